using LLMTune.Engine.Gguf;

namespace LLMTune.Inference.Tests.Support;

/// <summary>Small random llama models (and adapters) written once per test run into a temporary folder.</summary>
public static class TestModels
{
    private static readonly string Root = Directory.CreateTempSubdirectory("llmtune-inference-tests-").FullName;
    private static readonly Lazy<(string Path, LlamaGgufBuilder Builder)> SmallModel = new(() => Write("small", new RandomLlamaOptions
    {
        EmbeddingLength = 64,
        BlockCount = 2,
        HeadCount = 4,
        HeadCountKv = 2,
        FeedForwardLength = 128,
        ContextLength = 2048,
        Seed = 7,
        InitStd = 0.5f,
        Name = "test-small",
    }));

    private static readonly Lazy<string> LongModel = new(() => Write("long", new RandomLlamaOptions
    {
        EmbeddingLength = 256,
        BlockCount = 4,
        HeadCount = 8,
        HeadCountKv = 4,
        FeedForwardLength = 512,
        ContextLength = 2048,
        Seed = 11,
        InitStd = 0.2f,
        Name = "test-long",
    }).Path);

    /// <summary>
    /// A wider model (E=256, 4 layers, 2048-token context) for disconnect tests: a long generation on it lasts
    /// seconds, far longer than a hang-up takes to travel through the servers in between.
    /// </summary>
    public static string LongPath => LongModel.Value;

    /// <summary>The bundled model when it has been built (copied next to the tests by the host project), else null.</summary>
    public static string? Bundled =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, InferenceOptions.BundledModelPath))
            ? Path.Combine(AppContext.BaseDirectory, InferenceOptions.BundledModelPath)
            : null;

    /// <summary>A 2-layer model (E=64) with a 2048-token context: generating to the end takes long enough to interrupt.</summary>
    public static string SmallPath => SmallModel.Value.Path;

    public static LlamaHyperparameters SmallHyperparameters => SmallModel.Value.Builder.Weights.Hyperparameters;

    /// <summary>A random LoRA adapter for the small model.</summary>
    public static string WriteLoraAdapter(int seed)
    {
        var path = NewPath("lora");
        LoraAdapterGguf.Write(path, "llama", alpha: 8, LoraAdapterGguf.CreateRandomPairs(SmallHyperparameters, rank: 4, seed: seed, std: 0.3f));
        return path;
    }

    /// <summary>A whole model shaped like the small one with other weights (what a full fine-tune produces).</summary>
    public static string WriteFullModel(int seed) => Write($"full-{seed}-{Guid.NewGuid():N}", new RandomLlamaOptions
    {
        EmbeddingLength = 64,
        BlockCount = 2,
        HeadCount = 4,
        HeadCountKv = 2,
        FeedForwardLength = 128,
        ContextLength = 512,
        Seed = seed,
        InitStd = 0.5f,
        Name = "test-full",
    }).Path;

    public static string NewPath(string name) => Path.Combine(Root, $"{name}-{Guid.NewGuid():N}.gguf");

    private static (string Path, LlamaGgufBuilder Builder) Write(string name, RandomLlamaOptions options)
    {
        var path = Path.Combine(Root, name + ".gguf");
        var builder = LlamaGgufBuilder.CreateRandom(options);
        SilenceControlTokens(builder);
        builder.Write(path);
        return (path, builder);
    }

    /// <summary>
    /// Zeroes the output rows of the control tokens (end of turn, end of text): their logit is then 0 while some
    /// ordinary token's is almost surely positive, so greedy decoding never ends early and runs to maxTokens.
    /// </summary>
    private static void SilenceControlTokens(LlamaGgufBuilder builder)
    {
        var output = builder.Weights.Output ?? throw new InvalidOperationException("Test models need an untied output matrix.");
        var width = builder.Weights.Hyperparameters.EmbeddingLength;
        for (var token = 0; token < builder.Tokenizer.TokenTypes.Count; token++)
        {
            if (builder.Tokenizer.TokenTypes[token] == (int)GgufTokenType.Control)
            {
                Array.Clear(output, token * width, width);
            }
        }
    }
}
