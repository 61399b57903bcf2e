namespace LLMTune.Engine.Gguf;

/// <summary>
/// One low-rank update of a base weight <c>W</c> (ggml shape <c>{Input, Output}</c>): <c>W' = W + scale·B·A</c>.
/// <see cref="A"/> is row-major <c>[Rank][Input]</c> (ggml <c>{Input, Rank}</c>), <see cref="B"/> is row-major
/// <c>[Output][Rank]</c> (ggml <c>{Rank, Output}</c>), the shapes llama.cpp expects for <c>.lora_a</c>/<c>.lora_b</c>.
/// </summary>
public sealed record LoraTensorPair(string BaseTensorName, int Input, int Output, int Rank, float[] A, float[] B)
{
    public void Validate()
    {
        if (A.Length != Rank * Input || B.Length != Output * Rank)
        {
            throw new ArgumentException($"LoRA for '{BaseTensorName}': A needs {Rank}×{Input} and B {Output}×{Rank} values.");
        }
    }
}

/// <summary>
/// Writes llama.cpp LoRA adapters: <c>general.type</c> = adapter, <c>adapter.type</c> = lora,
/// <c>adapter.lora.alpha</c>, and <c>&lt;base&gt;.lora_a</c>/<c>&lt;base&gt;.lora_b</c> tensors.
/// llama.cpp scales the update by alpha / rank times the scale a context applies the adapter with.
/// </summary>
public static class LoraAdapterGguf
{
    public static void Write(string path, string architecture, float alpha, IEnumerable<LoraTensorPair> pairs, string name = "llmtune-lora", GgmlType storeAs = GgmlType.F32)
    {
        var writer = new GgufWriter();
        writer.Metadata
            .Set("general.architecture", architecture)
            .Set("general.type", "adapter")
            .Set("general.name", name)
            .Set("adapter.type", "lora")
            .Set("adapter.lora.alpha", alpha);
        foreach (var pair in pairs)
        {
            pair.Validate();
            writer.AddTensor($"{pair.BaseTensorName}.lora_a", [pair.Input, pair.Rank], pair.A, storeAs);
            writer.AddTensor($"{pair.BaseTensorName}.lora_b", [pair.Rank, pair.Output], pair.B, storeAs);
        }

        writer.Write(path);
    }

    /// <summary>
    /// Random (non-zero A and B) LoRA pairs for the attention and FFN projections of every layer, seeded; used by
    /// tests and benchmarks to get an adapter that visibly changes a model.
    /// </summary>
    public static IReadOnlyList<LoraTensorPair> CreateRandomPairs(LlamaHyperparameters hp, int rank, int seed, float std = 0.05f, IEnumerable<string>? targets = null)
    {
        var random = new Random(seed);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2 - 1) * std * Math.Sqrt(3))).ToArray();
        var pairs = new List<LoraTensorPair>();
        for (var l = 0; l < hp.BlockCount; l++)
        {
            foreach (var target in targets ?? ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"])
            {
                var (input, output) = target switch
                {
                    "attn_q" or "attn_output" => (hp.EmbeddingLength, hp.EmbeddingLength),
                    "attn_k" or "attn_v" => (hp.EmbeddingLength, hp.KvDimension),
                    "ffn_gate" or "ffn_up" => (hp.EmbeddingLength, hp.FeedForwardLength),
                    "ffn_down" => (hp.FeedForwardLength, hp.EmbeddingLength),
                    _ => throw new ArgumentException($"Unknown LoRA target '{target}'.", nameof(targets)),
                };
                pairs.Add(new LoraTensorPair($"blk.{l}.{target}.weight", input, output, rank, Values(rank * input), Values(output * rank)));
            }
        }

        return pairs;
    }
}
