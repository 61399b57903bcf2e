using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Finetune.Tests.Support;

/// <summary>
/// The real host (gateway auth, inference, finetune) with a temporary data folder, the test base models configured for
/// both training and serving, short leases, and a recorder of every published event.
/// </summary>
public sealed class FinetuneHost : IAsyncDisposable
{
    public const string OperatorToken = "operator-token-for-finetune-tests";
    public const string Small = "test/small";

    private FinetuneHost(TestHost host, PublishedEvents events)
    {
        Host = host;
        Events = events;
    }

    public TestHost Host { get; }
    public PublishedEvents Events { get; }
    public string Key => Host.InitialKey;
    /// <summary>The local artifact store's folder (uploads, snapshots, results).</summary>
    public string ArtifactsPath => Path.Combine(Host.DataDirectory, "artifacts");

    /// <summary>Where the worker trains.</summary>
    public string WorkPath => Path.Combine(Host.DataDirectory, "finetune-work");

    public static Dictionary<string, string?> Settings(string dataDirectory)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Admin:OperatorToken"] = OperatorToken,
            ["Artifacts:LocalPath"] = Path.Combine(dataDirectory, "artifacts"),
            ["Finetune:WorkPath"] = Path.Combine(dataDirectory, "finetune-work"),
            [$"Finetune:BaseModels:{Small}:Path"] = FinetuneTestModels.SmallPath,
            ["Finetune:Worker:LeaseDuration"] = "00:00:03",
            ["Finetune:Worker:PollInterval"] = "00:00:00.200",
            ["Finetune:Worker:ProgressInterval"] = "00:00:00.500",
            ["Finetune:Training:Threads"] = "2",
            ["Finetune:Training:CheckpointInterval"] = "5",
            [$"Inference:Models:{Small}:Path"] = FinetuneTestModels.SmallPath,
            [$"Inference:Models:{Small}:Threads"] = "1",
            ["Inference:Models:llmtune/tiny:Threads"] = "1",
        };
        var tiny = FinetuneTestModels.Bundled ?? FinetuneTestModels.SmallPath;
        settings["Finetune:BaseModels:llmtune/tiny:Path"] = tiny;
        settings["Inference:Models:llmtune/tiny:Path"] = tiny;
        return settings;
    }

    public static async Task<FinetuneHost> StartAsync(IDictionary<string, string?>? overrides = null)
    {
        var data = Directory.CreateTempSubdirectory("llmtune-finetune-").FullName;
        var settings = Settings(data);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var host = await TestHost.StartAsync(settings: settings, dataDirectory: data);
        var events = new PublishedEvents();
        host.Services.GetRequiredService<IBus>().ConnectPublishObserver(events);
        return new FinetuneHost(host, events);
    }

    public HttpClient Client(string? key = null) => Host.Client(key ?? Key);

    public T Service<T>() where T : notnull => Host.Services.GetRequiredService<T>();

    /// <summary>A second workspace and its key, made through the admin API.</summary>
    public async Task<string> CreateWorkspaceKeyAsync(string name)
    {
        using var admin = Host.Client();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name })).Json(HttpStatusCode.Created);
        return created.GetProperty("apiKey").GetProperty("key").GetString()!;
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>Calls of the fine-tune API used by several tests.</summary>
public static class FinetuneApi
{
    public static async Task<string> UploadAsync(this HttpClient client, string jsonl, string filename = "data.jsonl")
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("fine-tune"), "purpose");
        form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)), "file", filename);
        var file = await (await client.PostAsync("/v1/files", form)).Json();
        return file.GetProperty("id").GetString()!;
    }

    public static async Task<JsonElement> CreateJobAsync(this HttpClient client, object body) =>
        await (await client.PostAsJsonAsync("/v1/fine-tune", body)).Json(HttpStatusCode.Created);

    /// <summary>Uploads a dataset and starts a job long enough (40 epochs) to be interrupted after its first checkpoints.</summary>
    public static async Task<string> StartLongJobAsync(this HttpClient client)
    {
        var file = await client.UploadAsync(SecretWordDataset(40));
        var job = await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            hyperparameters = new { learningRate = 0.005, epochs = 40, batchSize = 4 },
        });
        return job.GetProperty("id").GetString()!;
    }

    public static async Task<JsonElement> GetJobAsync(this HttpClient client, string jobId) =>
        await (await client.GetAsync($"/v1/fine-tune/{jobId}")).Json();

    public static Task<JsonElement> WaitForStatusAsync(this HttpClient client, string jobId, TimeSpan timeout, params string[] statuses) =>
        Eventually.Get<JsonElement?>(
            async () => await client.GetJobAsync(jobId),
            job => job is { } j && statuses.Contains(j.GetProperty("status").GetString()),
            timeout,
            $"job {jobId} to reach {string.Join("/", statuses)}").ContinueWith(t => t.Result!.Value, TaskScheduler.Default);

    /// <summary>Every event of a job, oldest first.</summary>
    public static async Task<List<JsonElement>> EventsAsync(this HttpClient client, string jobId)
    {
        var all = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"/v1/fine-tune/{jobId}/events?limit=100{(cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")}")).Json();
            all.AddRange(page.GetProperty("data").EnumerateArray());
            cursor = page.GetProperty("hasMore").GetBoolean() ? page.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);
        all.Reverse();
        return all;
    }

    /// <summary>A constant-answer task a small random model learns in a few steps.</summary>
    public static string SecretWordDataset(int lines, string answer = "pineapple")
    {
        var builder = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            var line = i % 2 == 0
                ? JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"What is the secret word? ({i})" }, new { role = "assistant", content = answer } } })
                : JsonSerializer.Serialize(new { prompt = $"Tell me the secret word, number {i}.", completion = answer });
            builder.AppendLine(line);
        }

        return builder.ToString();
    }
}
