using System.Text.RegularExpressions;
using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Training;

/// <summary>A llama GGUF loaded for training: its shape, every weight as F32, and the file it came from.</summary>
internal sealed partial class TrainingModel
{
    private static readonly string[] LayerTensors =
        ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];

    private TrainingModel(GgufFile file, LlamaShape shape, IReadOnlyList<ModelTensor> weights)
    {
        File = file;
        Shape = shape;
        Weights = weights;
    }

    public GgufFile File { get; }

    public LlamaShape Shape { get; }

    /// <summary>All weights in file order, dequantized to F32.</summary>
    public IReadOnlyList<ModelTensor> Weights { get; }

    public static TrainingModel Load(string path)
    {
        var file = GgufFile.Read(path);
        if (file.Architecture != "llama")
        {
            throw new NotSupportedException($"Only the llama architecture can be trained; '{path}' is '{file.Architecture}'.");
        }

        var hp = LlamaHyperparameters.FromGguf(file);
        var meta = file.Metadata;
        var ropeScale = meta.GetStringOrDefault("llama.rope.scaling.type") is "linear"
            ? 1f / (meta.GetFloat32OrNull("llama.rope.scaling.factor") ?? 1f)
            : 1f;
        if (meta.GetStringOrDefault("llama.rope.scaling.type") is { } scaling and not ("none" or "linear"))
        {
            throw new NotSupportedException($"RoPE scaling '{scaling}' is not supported by the trainer.");
        }

        var shape = new LlamaShape(
            VocabSize: hp.VocabSize,
            EmbeddingLength: hp.EmbeddingLength,
            BlockCount: hp.BlockCount,
            HeadCount: hp.HeadCount,
            HeadCountKv: hp.HeadCountKv,
            FeedForwardLength: hp.FeedForwardLength,
            ContextLength: hp.ContextLength,
            RmsNormEps: hp.RmsNormEpsilon,
            RopeFreqBase: hp.RopeFreqBase,
            RopeDimensions: (int?)meta.GetInt64OrNull("llama.rope.dimension_count") ?? 0,
            RopeFreqScale: ropeScale);
        shape.Validate();

        var expected = ExpectedTensorNames(shape, file.FindTensor("output.weight") is not null).ToList();
        var known = expected.ToHashSet(StringComparer.Ordinal);
        foreach (var tensor in file.Tensors)
        {
            if (!known.Contains(tensor.Name))
            {
                throw new NotSupportedException($"Tensor '{tensor.Name}' is not part of the llama graph the trainer builds.");
            }
        }

        var weights = new List<ModelTensor>(file.Tensors.Count);
        foreach (var name in expected)
        {
            var tensor = file.FindTensor(name) ?? throw new InvalidDataException($"'{path}' has no tensor '{name}'.");
            weights.Add(new ModelTensor(tensor.Name, (long[])tensor.Shape.Clone(), tensor.ToFloat32()));
        }

        return new TrainingModel(file, shape, weights);
    }

    /// <summary>The name of the weight a LoRA module adapts in a layer (or the head for <c>output</c>).</summary>
    public static string TargetTensorName(string module, int layer) => module == "output" ? "output.weight" : $"blk.{layer}.{module}.weight";

    public static bool IsLayerModule(string module) => module != "output";

    [GeneratedRegex(@"^blk\.(\d+)\.")]
    private static partial Regex LayerPrefix();

    private static IEnumerable<string> ExpectedTensorNames(LlamaShape shape, bool hasOutput)
    {
        yield return "token_embd.weight";
        for (var layer = 0; layer < shape.BlockCount; layer++)
        {
            foreach (var tensor in LayerTensors)
            {
                yield return $"blk.{layer}.{tensor}.weight";
            }
        }

        yield return "output_norm.weight";
        if (hasOutput)
        {
            yield return "output.weight";
        }
    }

    internal static int? LayerOf(string tensorName)
    {
        var match = LayerPrefix().Match(tensorName);
        return match.Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }
}
