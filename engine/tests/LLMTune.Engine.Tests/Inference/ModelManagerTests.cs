using LLMTune.Engine.Gguf;
using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

public sealed class ModelManagerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Loaded_models_are_listed_with_their_summary()
    {
        var (path, builder) = TestModels.Get("small", TestModels.Small);
        var (templated, _) = TestModels.Get("chatml-template", TestModels.Small with { ChatTemplate = LlamaGgufBuilder.ChatMlTemplate, Name = "test-chatml" });
        await using var manager = new ModelManager();
        await manager.LoadAsync("b-small", new ModelLoadOptions { Path = path, ContextLength = 128, MaxConcurrentSequences = 2, Threads = 1 }, Ct);
        await manager.LoadAsync("a-templated", new ModelLoadOptions { Path = templated, MaxConcurrentSequences = 1, Threads = 1 }, Ct);

        var summaries = manager.List();

        Assert.Equal(["a-templated", "b-small"], summaries.Select(s => s.Id));
        var small = summaries[1];
        var hp = builder.Weights.Hyperparameters;
        Assert.Equal("llama", small.Architecture);
        Assert.Equal("test-small", small.Name);
        Assert.Equal(hp.ParameterCount(), small.ParameterCount);
        Assert.Equal(hp.VocabSize, small.VocabularySize);
        Assert.Equal(hp.ContextLength, small.TrainedContextLength);
        Assert.Equal(128, small.ContextLength);
        Assert.Equal(hp.BlockCount, small.LayerCount);
        Assert.Equal(new FileInfo(path).Length, small.FileSizeBytes);
        Assert.False(small.HasChatTemplate);
        Assert.True(summaries[0].HasChatTemplate);
        Assert.Equal(hp.ContextLength, summaries[0].ContextLength);
    }

    [Fact]
    public async Task Loading_an_id_twice_or_a_missing_file_fails_clearly()
    {
        await using var manager = new ModelManager();
        await manager.LoadAsync("m", new ModelLoadOptions { Path = TestModels.SmallPath, MaxConcurrentSequences = 1, Threads = 1 }, Ct);

        await Assert.ThrowsAsync<ModelAlreadyLoadedException>(() => manager.LoadAsync("m", new ModelLoadOptions { Path = TestModels.SmallPath }, Ct));
        await Assert.ThrowsAsync<ModelLoadException>(() => manager.LoadAsync("missing", new ModelLoadOptions { Path = "/nonexistent/model.gguf" }, Ct));
        var garbage = TestModels.NewPath("not-a-model");
        await File.WriteAllTextAsync(garbage, "not a model", Ct);
        await Assert.ThrowsAsync<ModelLoadException>(() => manager.LoadAsync("garbage", new ModelLoadOptions { Path = garbage }, Ct));
        await Assert.ThrowsAsync<ModelNotFoundException>(() => manager.UnloadAsync("never-loaded"));
        Assert.Equal(["m"], manager.List().Select(s => s.Id));
    }

    [Fact]
    public async Task Unloading_fails_running_requests_and_releases_the_model_memory()
    {
        // A private copy, so the mapping check below sees only this model's file.
        var path = TestModels.NewPath("unload");
        File.Copy(TestModels.NeverEndingPath, path);
        await using var manager = new ModelManager();
        var model = await manager.LoadAsync("m", new ModelLoadOptions { Path = path, MaxConcurrentSequences = 1, Threads = 1 }, Ct);
        var running = model.Generate(new GenerationRequest { Prompt = "forever", MaxTokens = 200, Temperature = 0 }, Ct);
        var queued = model.Generate(new GenerationRequest { Prompt = "queued", MaxTokens = 200, Temperature = 0 }, Ct);
        await foreach (var _ in running.ReadTokensAsync(Ct))
        {
            break;
        }

        Assert.True(IsMapped(path), "llama.cpp maps the model file while it is loaded");
        await manager.UnloadAsync("m");

        await Assert.ThrowsAsync<ModelUnloadedException>(() => running.Completion);
        await Assert.ThrowsAsync<ModelUnloadedException>(() => queued.Completion);
        Assert.Throws<ModelUnloadedException>(() => model.Generate(new GenerationRequest { Prompt = "late" }));
        Assert.False(manager.TryGet("m", out _));
        Assert.Empty(manager.List());
        Assert.False(IsMapped(path), "the model file is still mapped after unload");

        // The id is free again.
        await manager.LoadAsync("m", new ModelLoadOptions { Path = path, MaxConcurrentSequences = 1, Threads = 1 }, Ct);
        Assert.True(manager.TryGet("m", out _));
    }

    private static bool IsMapped(string path) =>
        !OperatingSystem.IsLinux() || File.ReadLines("/proc/self/maps").Any(line => line.EndsWith(path, StringComparison.Ordinal));
}
