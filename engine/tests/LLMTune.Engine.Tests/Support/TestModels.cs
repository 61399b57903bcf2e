using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Tests.Support;

/// <summary>
/// Small random llama models written once per test run into a temporary folder and shared by the tests.
/// </summary>
public static class TestModels
{
    private static readonly string Root = Directory.CreateTempSubdirectory("llmtune-engine-tests-").FullName;
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, (string Path, LlamaGgufBuilder Builder)> Cache = [];

    /// <summary>A 2-layer GQA model (E=64, 4 heads over 2 KV heads) whose random weights are strong enough to make output depend on the prompt.</summary>
    public static RandomLlamaOptions Small { get; } = new()
    {
        EmbeddingLength = 64,
        BlockCount = 2,
        HeadCount = 4,
        HeadCountKv = 2,
        FeedForwardLength = 128,
        ContextLength = 256,
        Seed = 7,
        InitStd = 0.5f,
        Name = "test-small",
    };

    public static string SmallPath => Get("small", Small).Path;

    public static LlamaGgufBuilder SmallBuilder => Get("small", Small).Builder;

    public static (string Path, LlamaGgufBuilder Builder) Get(string key, RandomLlamaOptions options)
    {
        lock (Gate)
        {
            if (!Cache.TryGetValue(key, out var entry))
            {
                var path = Path.Combine(Root, key + ".gguf");
                entry = (path, LlamaGgufBuilder.WriteRandom(path, options));
                Cache[key] = entry;
            }

            return entry;
        }
    }

    /// <summary>A fresh path in the run's temporary folder.</summary>
    public static string NewPath(string name) => Path.Combine(Root, $"{name}-{Guid.NewGuid():N}.gguf");
}
