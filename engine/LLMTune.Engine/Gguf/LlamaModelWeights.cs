namespace LLMTune.Engine.Gguf;

/// <summary>
/// Weights of one llama block. Matrices are row-major <c>[output][input]</c> (the input index is contiguous),
/// which is llama.cpp's layout: ggml shape <c>{input, output}</c>.
/// </summary>
public sealed class LlamaLayerWeights
{
    public required float[] AttentionNorm { get; init; }     // [E]
    public required float[] Query { get; init; }             // [E][E]
    public required float[] Key { get; init; }               // [KV][E]
    public required float[] Value { get; init; }             // [KV][E]
    public required float[] AttentionOutput { get; init; }   // [E][E]
    public required float[] FeedForwardNorm { get; init; }   // [E]
    public required float[] Gate { get; init; }              // [F][E]
    public required float[] Up { get; init; }                // [F][E]
    public required float[] Down { get; init; }              // [E][F]
}

/// <summary>All weights of a llama model in llama.cpp's layout (see <see cref="LlamaLayerWeights"/>).</summary>
public sealed class LlamaModelWeights
{
    public required LlamaHyperparameters Hyperparameters { get; init; }
    public required float[] TokenEmbedding { get; init; }    // [V][E]
    public required LlamaLayerWeights[] Layers { get; init; }
    public required float[] OutputNorm { get; init; }        // [E]

    /// <summary>The output head <c>[V][E]</c>; null ties it to <see cref="TokenEmbedding"/> (llama.cpp falls back to it).</summary>
    public float[]? Output { get; init; }

    /// <summary>
    /// Gaussian weights with standard deviation <paramref name="std"/> (norm weights 1), fully determined by <paramref name="seed"/>.
    /// The output projections are scaled down by √(2·layers) as in GPT-2, so deeper random models stay stable.
    /// </summary>
    public static LlamaModelWeights CreateRandom(LlamaHyperparameters hp, int seed, float std = 0.02f, bool tiedOutput = false)
    {
        hp.Validate();
        var random = new Random(seed);
        int e = hp.EmbeddingLength, f = hp.FeedForwardLength, kv = hp.KvDimension, v = hp.VocabSize;
        var residualStd = std / MathF.Sqrt(2f * hp.BlockCount);
        float[] Normal(int count, float sigma)
        {
            var values = new float[count];
            for (var i = 0; i < count; i++)
            {
                // Box-Muller: Random has no Gaussian sampler.
                var u1 = 1.0 - random.NextDouble();
                var u2 = random.NextDouble();
                values[i] = (float)(sigma * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }

            return values;
        }

        float[] Ones(int count) => Enumerable.Repeat(1f, count).ToArray();

        var embedding = Normal(v * e, std);
        var layers = new LlamaLayerWeights[hp.BlockCount];
        for (var l = 0; l < layers.Length; l++)
        {
            layers[l] = new LlamaLayerWeights
            {
                AttentionNorm = Ones(e),
                Query = Normal(e * e, std),
                Key = Normal(kv * e, std),
                Value = Normal(kv * e, std),
                AttentionOutput = Normal(e * e, residualStd),
                FeedForwardNorm = Ones(e),
                Gate = Normal(f * e, std),
                Up = Normal(f * e, std),
                Down = Normal(e * f, residualStd),
            };
        }

        return new LlamaModelWeights
        {
            Hyperparameters = hp,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = Ones(e),
            Output = tiedOutput ? null : Normal(v * e, std),
        };
    }
}
