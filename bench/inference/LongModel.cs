using LLMTune.Engine.Gguf;

/// <summary>
/// A random llama model of a chosen shape that never ends early (end-of-text can never win), so every request decodes
/// to its maxTokens: e.g. 768 × 6 layers (44 M parameters, 176 MB) is memory-bound like real LLMs. Shared by the benches.
/// </summary>
internal static class LongModel
{
    public static string Write(int embedding, int layers)
    {
        var builder = LlamaGgufBuilder.CreateRandom(new RandomLlamaOptions
        {
            EmbeddingLength = embedding,
            BlockCount = layers,
            HeadCount = 4,
            HeadCountKv = 4,
            FeedForwardLength = embedding * 3,
            ContextLength = 256,
            Seed = 3,
            InitStd = 0.3f,
            Name = "bench-long",
        });
        var width = builder.Weights.Hyperparameters.EmbeddingLength;
        for (var token = 0; token < builder.Tokenizer.TokenTypes.Count; token++)
        {
            if (builder.Tokenizer.TokenTypes[token] == (int)GgufTokenType.Control)
            {
                Array.Clear(builder.Weights.Output!, token * width, width);
            }
        }

        var path = Path.Combine(Path.GetTempPath(), $"llmtune-bench-long-{Environment.ProcessId}.gguf");
        builder.Write(path);
        return path;
    }
}
