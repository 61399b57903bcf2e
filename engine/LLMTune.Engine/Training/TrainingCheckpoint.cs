using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Training;

/// <summary>
/// The trainable tensors plus the run's position (step, epoch, last loss), stored as one GGUF file that is
/// replaced atomically (written beside it, then renamed over it), so a crash never leaves a torn checkpoint.
/// AdamW moments are not saved (ggml_opt does not expose them): a resumed run re-warms them from zero.
/// </summary>
internal sealed record TrainingCheckpoint(int Step, int Epoch, float Loss, string Fingerprint, IReadOnlyDictionary<string, float[]> Tensors)
{
    public const string FileName = "checkpoint.gguf";
    private const string Prefix = "llmtune.checkpoint.";

    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    public void Write(string directory, IReadOnlyDictionary<string, long[]> shapes)
    {
        Directory.CreateDirectory(directory);
        var writer = new GgufWriter();
        writer.Metadata
            .Set("general.type", "checkpoint")
            .Set(Prefix + "step", (uint)Step)
            .Set(Prefix + "epoch", (uint)Epoch)
            .Set(Prefix + "loss", Loss)
            .Set(Prefix + "fingerprint", Fingerprint);
        foreach (var (name, data) in Tensors)
        {
            writer.AddTensor(name, shapes[name], data);
        }

        var target = PathIn(directory);
        var temporary = target + ".tmp";
        writer.Write(temporary);
        File.Move(temporary, target, overwrite: true);
    }

    public static TrainingCheckpoint? TryRead(string directory)
    {
        var path = PathIn(directory);
        if (!File.Exists(path))
        {
            return null;
        }

        var file = GgufFile.Read(path);
        var meta = file.Metadata;
        return new TrainingCheckpoint(
            Step: meta.GetInt32(Prefix + "step"),
            Epoch: meta.GetInt32(Prefix + "epoch"),
            Loss: meta.GetFloat32(Prefix + "loss"),
            Fingerprint: meta.GetString(Prefix + "fingerprint"),
            Tensors: file.Tensors.ToDictionary(t => t.Name, t => t.ToFloat32(), StringComparer.Ordinal));
    }

    /// <summary>Removes the checkpoint and any half-written file beside it.</summary>
    public static void Delete(string directory)
    {
        foreach (var path in new[] { PathIn(directory), PathIn(directory) + ".tmp" })
        {
            if (File.Exists(path))
            {
                File.Delete(path);
            }
        }
    }
}
