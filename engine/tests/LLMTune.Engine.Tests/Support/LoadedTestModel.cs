using LLMTune.Engine.Inference;

namespace LLMTune.Engine.Tests.Support;

/// <summary>A model manager holding one loaded test model; disposing unloads it.</summary>
public sealed class LoadedTestModel : IAsyncDisposable
{
    private LoadedTestModel(ModelManager manager, LoadedModel model)
    {
        Manager = manager;
        Model = model;
    }

    public ModelManager Manager { get; }

    public LoadedModel Model { get; }

    public static async Task<LoadedTestModel> LoadAsync(string path, int maxSequences = 8, int queueCapacity = 16, int contextLength = 256, IReadOnlyList<ModelVariantOptions>? variants = null, int choiceSequences = GenerationRequest.MaxChoices - 1)
    {
        var manager = new ModelManager();
        var model = await manager.LoadAsync("test", new ModelLoadOptions
        {
            Path = path,
            ContextLength = contextLength,
            MaxConcurrentSequences = maxSequences,
            ChoiceSequences = choiceSequences,
            QueueCapacity = queueCapacity,
            // One thread: ggml's workers spin, which is slow when test processes share the cores.
            Threads = 1,
            Variants = variants ?? [],
        }, TestContext.Current.CancellationToken);
        return new LoadedTestModel(manager, model);
    }

    public ValueTask DisposeAsync() => Manager.DisposeAsync();
}
