using LLMTune.Engine.Gguf;

namespace LLMTune.Testing;

/// <summary>
/// A small random ChatML model (2 layers, E=64, byte-level vocabulary) written once per test process: loads and
/// trains in seconds, for tests that need a real GGUF but not a good one.
/// </summary>
public static class SmallTestModel
{
    private static readonly Lazy<string> Written = new(() =>
    {
        var path = System.IO.Path.Combine(Directory.CreateTempSubdirectory("llmtune-test-models-").FullName, "small-chatml.gguf");
        LlamaGgufBuilder.WriteRandom(path, new RandomLlamaOptions
        {
            EmbeddingLength = 64,
            BlockCount = 2,
            HeadCount = 4,
            HeadCountKv = 2,
            FeedForwardLength = 128,
            ContextLength = 256,
            Seed = 11,
            InitStd = 0.02f,
            Name = "test-small-chatml",
            ChatTemplate = LlamaGgufBuilder.ChatMlTemplate,
        });
        return path;
    });

    /// <summary>The model file's path (written on first use).</summary>
    public static string Path => Written.Value;
}
