using System.Net.Http.Headers;
using System.Net.Http.Json;
using LLMTune.Engine.Inference;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests.Support;

/// <summary>
/// The real host (gateway auth + inference) shared by the test classes, serving the test models:
/// <c>llmtune/tiny</c> (the bundled model once built, the small random model until then), <c>test/small</c>,
/// <c>test/stream</c> (a wider model for disconnects, so no other test touches its slots) and <c>test/busy</c> (one slot, no queue).
/// </summary>
public sealed class InferenceHost : IAsyncLifetime
{
    public const string OperatorToken = "operator-token-for-inference-tests";
    public const string Small = "test/small";
    public const string Stream = "test/stream";
    public const string Busy = "test/busy";

    public TestHost Host { get; private set; } = null!;

    public PublishedEvents Events { get; } = new();

    public ConsumedMessages Consumed { get; } = new();

    public string Key => Host.InitialKey;

    public static Dictionary<string, string?> LocalModelSettings()
    {
        var settings = new Dictionary<string, string?>
        {
            [$"Inference:Models:{Small}:Path"] = TestModels.SmallPath,
            [$"Inference:Models:{Small}:Threads"] = "1",
            [$"Inference:Models:{Small}:ContextLength"] = "512",
            [$"Inference:Models:{Stream}:Path"] = TestModels.LongPath,
            [$"Inference:Models:{Stream}:Threads"] = "1",
            [$"Inference:Models:{Stream}:MaxConcurrency"] = "2",
            [$"Inference:Models:{Busy}:Path"] = TestModels.SmallPath,
            [$"Inference:Models:{Busy}:Threads"] = "1",
            [$"Inference:Models:{Busy}:MaxConcurrency"] = "1",
            [$"Inference:Models:{Busy}:QueueSize"] = "0",
            [$"Inference:Models:{Busy}:ChoiceSequences"] = "1",
            ["Inference:Models:llmtune/tiny:Threads"] = "1",
        };
        if (TestModels.Bundled is null)
        {
            settings["Inference:Models:llmtune/tiny:Path"] = TestModels.SmallPath;
            settings["Inference:Models:llmtune/tiny:ContextLength"] = "512";
        }

        return settings;
    }

    public async ValueTask InitializeAsync()
    {
        var settings = LocalModelSettings();
        settings["Admin:OperatorToken"] = OperatorToken;
        Host = await TestHost.StartAsync(settings: settings);
        Host.Services.GetRequiredService<IBus>().ConnectPublishObserver(Events);
        Host.Services.GetRequiredService<IBus>().ConnectConsumeObserver(Consumed);
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();

    public HttpClient Client(string? key = null) => Host.Client(key ?? Key);

    public GeneratorStats Stats(string modelId) => Host.Services.GetRequiredService<ModelManager>().Get(modelId).GetStats();

    /// <summary>A second workspace and its key, made through the admin API.</summary>
    public async Task<(string WorkspaceId, string Key)> CreateWorkspaceAsync(string name)
    {
        using var admin = Host.Client();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name })).Json(System.Net.HttpStatusCode.Created);
        return (created.GetProperty("workspace").GetProperty("id").GetString()!, created.GetProperty("apiKey").GetProperty("key").GetString()!);
    }
}
