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

    /// <summary>
    /// <see cref="Small"/> with the output rows of the control tokens zeroed: their logit is always 0 while the
    /// others spread several units either side, so greedy decoding never ends early (for timing-sensitive tests).
    /// </summary>
    public static string NeverEndingPath => Get("never-ending", Small with { Name = "test-never-ending" }, builder =>
    {
        var e = builder.Weights.Hyperparameters.EmbeddingLength;
        for (var id = 0; id < builder.Tokenizer.Tokens.Count; id++)
        {
            if (builder.Tokenizer.TokenTypes[id] == (int)GgufTokenType.Control)
            {
                Array.Clear(builder.Weights.Output!, id * e, e);
            }
        }
    }).Path;

    public static (string Path, LlamaGgufBuilder Builder) Get(string key, RandomLlamaOptions options, Action<LlamaGgufBuilder>? adjust = null)
    {
        lock (Gate)
        {
            if (!Cache.TryGetValue(key, out var entry))
            {
                var path = Path.Combine(Root, key + ".gguf");
                var builder = LlamaGgufBuilder.CreateRandom(options);
                adjust?.Invoke(builder);
                builder.Write(path);
                entry = (path, builder);
                Cache[key] = entry;
            }

            return entry;
        }
    }

    /// <summary>A fresh path in the run's temporary folder.</summary>
    public static string NewPath(string name) => Path.Combine(Root, $"{name}-{Guid.NewGuid():N}.gguf");
}
