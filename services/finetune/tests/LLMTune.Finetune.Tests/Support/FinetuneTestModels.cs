using LLMTune.Engine.Gguf;
using LLMTune.Engine.TinyModel;

namespace LLMTune.Finetune.Tests.Support;

/// <summary>Base models for the tests: a small random ChatML model (fast), and the bundled model once it is built.</summary>
public static class FinetuneTestModels
{
    private static readonly string Root = Directory.CreateTempSubdirectory("llmtune-finetune-tests-").FullName;

    private static readonly Lazy<string> SmallModel = new(() =>
    {
        var path = Path.Combine(Root, "small-chatml.gguf");
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
            Name = "test-finetune-small",
            ChatTemplate = LlamaGgufBuilder.ChatMlTemplate,
        });
        return path;
    });

    /// <summary>A 2-layer random model (E=64) with a byte-level vocabulary and a ChatML template.</summary>
    public static string SmallPath => SmallModel.Value;

    /// <summary>
    /// The bundled model, or null when it has not been built: next to the tests (copied by the host project) or in the
    /// repository's models/ folder (see <see cref="BundledModel.Find()"/>).
    /// </summary>
    public static string? Bundled => BundledModel.Find();
}
