using LLMTune.Engine.TinyModel;

namespace LLMTune.Finetune.Tests.Support;

/// <summary>Base models for the tests: a small random ChatML model (fast), and the bundled model once it is built.</summary>
public static class FinetuneTestModels
{
    /// <summary>A 2-layer random model (E=64) with a byte-level vocabulary and a ChatML template.</summary>
    public static string SmallPath => SmallTestModel.Path;

    /// <summary>
    /// The bundled model, or null when it has not been built: next to the tests (copied by the host project) or in the
    /// repository's models/ folder (see <see cref="BundledModel.Find()"/>).
    /// </summary>
    public static string? Bundled => BundledModel.Find();
}
