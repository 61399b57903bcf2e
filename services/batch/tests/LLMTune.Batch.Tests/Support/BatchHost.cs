using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.TinyModel;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Batch.Tests.Support;

/// <summary>
/// The real host in one process (gateway auth, inference, batch) on a temporary data folder, serving the bundled model
/// as <c>llmtune/tiny</c>, <c>test/short</c> (the bundled model with a 64-token context, to fail long prompts) and
/// <c>test/slow</c> (a wider random model that never stops early, so a batch on it runs long enough to watch), and
/// recording every published and consumed message.
/// </summary>
public sealed class BatchHost : IAsyncDisposable
{
    public const string OperatorToken = "operator-token-for-batch-tests";
    public const string Tiny = "llmtune/tiny";
    public const string Short = "test/short";
    public const string Slow = "test/slow";

    private BatchHost(TestHost host, PublishedEvents published, ConsumedMessages consumed)
    {
        Host = host;
        Published = published;
        Consumed = consumed;
    }

    public TestHost Host { get; }

    /// <summary>Every message the bus published, from its start (events left in the outbox go out before StartAsync returns).</summary>
    public PublishedEvents Published { get; }
    public ConsumedMessages Consumed { get; }
    public string Key => Host.InitialKey;

    public static async Task<BatchHost> StartAsync(
        IDictionary<string, string?>? overrides = null, string? dataDirectory = null, Action<WebApplicationBuilder>? configure = null)
    {
        var data = dataDirectory ?? Directory.CreateTempSubdirectory("llmtune-batch-").FullName;
        var bundled = BundledModel.Find() ?? throw new InvalidOperationException("The bundled model (models/llmtune-tiny.gguf) is missing.");
        var settings = new Dictionary<string, string?>
        {
            ["Admin:OperatorToken"] = OperatorToken,
            [$"Inference:Models:{Tiny}:Path"] = bundled,
            [$"Inference:Models:{Tiny}:Threads"] = "1",
            [$"Inference:Models:{Short}:Path"] = bundled,
            [$"Inference:Models:{Short}:Threads"] = "1",
            [$"Inference:Models:{Short}:ContextLength"] = "64",
            [$"Inference:Models:{Slow}:Path"] = SlowModel.Value,
            [$"Inference:Models:{Slow}:Threads"] = "1",
            ["Batch:PollInterval"] = "00:00:00.100",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var published = new PublishedEvents();
        var consumed = new ConsumedMessages();
        var host = await TestHost.StartAsync(settings: settings, dataDirectory: data, configure: builder =>
        {
            // Registered, not connected after the start: the outbox dispatcher publishes as soon as the bus is up.
            builder.Services.AddPublishObserver(_ => published);
            builder.Services.AddConsumeObserver(_ => consumed);
            configure?.Invoke(builder);
        });
        return new BatchHost(host, published, consumed);
    }

    public HttpClient Client(string? key = null) => Host.Client(key ?? Key);

    public T Service<T>() where T : notnull => Host.Services.GetRequiredService<T>();

    /// <summary>A second workspace's key, made through the admin API.</summary>
    public async Task<string> CreateWorkspaceKeyAsync(string name)
    {
        using var admin = Host.Client();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name })).Json(HttpStatusCode.Created);
        return created.GetProperty("apiKey").GetProperty("key").GetString()!;
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();

    /// <summary>E=256, 4 layers, control tokens silenced: greedy decoding always runs to maxTokens.</summary>
    private static readonly Lazy<string> SlowModel = new(() =>
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("llmtune-batch-models-").FullName, "slow.gguf");
        var builder = LlamaGgufBuilder.CreateRandom(new RandomLlamaOptions
        {
            EmbeddingLength = 256,
            BlockCount = 4,
            HeadCount = 8,
            HeadCountKv = 4,
            FeedForwardLength = 512,
            ContextLength = 1024,
            Seed = 5,
            InitStd = 0.2f,
            Name = "test-batch-slow",
        });
        var output = builder.Weights.Output ?? throw new InvalidOperationException("Test models need an untied output matrix.");
        var width = builder.Weights.Hyperparameters.EmbeddingLength;
        for (var token = 0; token < builder.Tokenizer.TokenTypes.Count; token++)
        {
            if (builder.Tokenizer.TokenTypes[token] == (int)GgufTokenType.Control)
            {
                Array.Clear(output, token * width, width);
            }
        }

        builder.Write(path);
        return path;
    });
}

/// <summary>Calls of the batch API used by several tests.</summary>
public static class BatchApi
{
    public static object Requests(int count, string prefix = "req", int maxTokens = 8) =>
        Enumerable.Range(1, count).Select(i => new { id = $"{prefix}-{i}", prompt = $"Say something about the number {i}.", maxTokens, temperature = 0 }).ToArray();

    public static async Task<JsonElement> SubmitAsync(this HttpClient client, object body) =>
        await (await client.PostAsJsonAsync("/v1/batch/inference", body)).Json(HttpStatusCode.Accepted);

    public static async Task<JsonElement> GetBatchAsync(this HttpClient client, string batchId) =>
        await (await client.GetAsync($"/v1/batch/{batchId}")).Json();

    public static Task<JsonElement> WaitForAsync(this HttpClient client, string batchId, Func<JsonElement, bool> done, string what, TimeSpan? timeout = null) =>
        Eventually.Get<JsonElement?>(async () => await client.GetBatchAsync(batchId), b => b is { } batch && done(batch), timeout ?? TimeSpan.FromSeconds(90), what)
            .ContinueWith(t => t.Result!.Value, TaskScheduler.Default);

    public static Task<JsonElement> WaitForEndAsync(this HttpClient client, string batchId, TimeSpan? timeout = null) =>
        client.WaitForAsync(batchId, b => b.GetProperty("status").GetString() is "completed" or "completed_with_errors" or "failed" or "cancelled",
            $"batch {batchId} to end", timeout);

    public static int Count(this JsonElement batch, string name) => batch.GetProperty("counts").GetProperty(name).GetInt32();
}

/// <summary>One host per test class (xunit class fixture).</summary>
public sealed class SharedBatchHost : IAsyncLifetime
{
    public BatchHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await BatchHost.StartAsync();

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
