using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LLMTune.Engine.TinyModel;
using LLMTune.Testing;

namespace LLMTune.IntegrationTests.Faults;

/// <summary>
/// What the fault tests share: the <c>llmtune</c> executable's settings for a data folder (each process its own store
/// file), a small base model that trains in seconds, a webhook receiver, and the client calls they make.
/// </summary>
internal static class FaultRig
{
    public const string OperatorToken = "operator-token-for-fault-tests";
    public const string InternalSecret = "internal-secret-for-fault-tests-0123456789";
    public const string Tiny = "llmtune/tiny";
    public const string Small = "test/small";

    public static string Log(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        return line;
    }

    /// <summary><c>serve</c> arguments: this folder's store and files, RabbitMQ at <paramref name="rabbitUrl"/>, the test models.</summary>
    public static List<string> Args(string data, string rabbitUrl, string store = "llmtune.db")
    {
        var tiny = BundledModel.Find() ?? throw new InvalidOperationException("models/llmtune-tiny.gguf has not been built.");
        return
        [
            $"--Storage:Provider=LiteDb",
            $"--Storage:LiteDbPath={Path.Combine(data, store)}",
            $"--Gateway:InitialWorkspace:KeyFile={Path.Combine(data, "initial-api-key")}",
            $"--Artifacts:LocalPath={Path.Combine(data, "artifacts")}",
            $"--Finetune:WorkPath={Path.Combine(data, "finetune-work")}",
            $"--Webhooks:EncryptionKeyFile={Path.Combine(data, "webhooks-encryption-key")}",
            "--Outbound:AllowedHosts:0=127.0.0.1",
            "--Webhooks:Delivery:PollInterval=00:00:00.200",
            "--Serilog:MinimumLevel:Default=Warning",
            "--Bus:Transport=RabbitMq",
            $"--ConnectionStrings:RabbitMq={rabbitUrl}",
            $"--Admin:OperatorToken={OperatorToken}",
            $"--Internal:Secret={InternalSecret}",
            // Recovery after an outage within a second or two, instead of the production back-off of up to 10 s.
            "--Outbox:RetryMaxDelay=00:00:01",
            "--Outbox:PublishTimeout=00:00:03",
            "--Outbox:PollInterval=00:00:00.200",
            $"--Inference:Models:{Tiny}:Path={tiny}",
            $"--Inference:Models:{Tiny}:QueueSize=128",
            $"--Inference:Models:{Small}:Path={SmallTestModel.Path}",
            $"--Finetune:BaseModels:{Small}:Path={SmallTestModel.Path}",
            "--Finetune:Worker:PollInterval=00:00:00.200",
            "--Finetune:Worker:LeaseDuration=00:00:03",
            "--Finetune:Worker:ProgressInterval=00:00:00.500",
            "--Finetune:Training:Threads=1",
            "--Finetune:Training:CheckpointInterval=5",
            "--Batch:PollInterval=00:00:00.200",
        ];
    }

    public static HttpClient Client(Uri address, string key, TimeSpan? timeout = null)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = timeout ?? TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public static string InitialKey(string data) => File.ReadAllText(Path.Combine(data, "initial-api-key")).Trim();

    public static async Task<bool> ReadyAsync(Uri address)
    {
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await client.GetAsync("/readyz");
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <summary>The readiness report's overall status (Healthy, Degraded, Unhealthy); a lost broker leaves it Degraded.</summary>
    public static async Task<string?> ReadinessAsync(Uri address)
    {
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(5) };
        using var response = await client.GetAsync("/readyz");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>One chat completion; the outcome whatever it is (status, error code, Retry-After, time taken).</summary>
    public static async Task<Outcome> ChatAsync(HttpClient client, int i)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = Tiny,
                messages = new[] { new { role = "user", content = $"Hello {i}" } },
                max_tokens = 4,
            });
            var body = await response.Content.ReadAsStringAsync();
            string? code = null;
            if (!response.IsSuccessStatusCode)
            {
                try
                {
                    code = JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString();
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    code = "not-the-error-shape: " + body[..Math.Min(body.Length, 200)];
                }
            }

            return new Outcome((int)response.StatusCode, code, response.Headers.RetryAfter?.Delta,
                response.Headers.TryGetValues("x-request-id", out var ids) ? ids.First() : null, watch.Elapsed);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new Outcome(0, e.GetType().Name, null, null, watch.Elapsed);
        }
    }

    /// <summary><paramref name="count"/> chat completions, <paramref name="parallel"/> at a time; with <paramref name="over"/>, request i starts no sooner than i/count of it.</summary>
    public static async Task<List<Outcome>> ChatManyAsync(HttpClient client, int count, int parallel = 4, TimeSpan? over = null)
    {
        var results = new ConcurrentBag<Outcome>();
        var next = -1;
        var started = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                if (over is { } span && (span * i / count) - started.Elapsed is { Ticks: > 0 } early)
                {
                    await Task.Delay(early); // a load spread over time, not a wait for a result
                }

                results.Add(await ChatAsync(client, i));
            }
        }));
        return [.. results];
    }

    /// <summary>Requests billed for this workspace this month (billing's usage records, one per request id).</summary>
    public static async Task<long> BilledRequestsAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/v1/usage");
        return (await response.Json()).GetProperty("total").GetProperty("requests").GetInt64();
    }

    public static async Task<string> UploadAsync(HttpClient client, int lines)
    {
        var jsonl = string.Join('\n', Enumerable.Range(0, lines).Select(i =>
            JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"What is the secret word? ({i})" }, new { role = "assistant", content = "pineapple" } } })));
        using var form = new MultipartFormDataContent
        {
            { new StringContent("fine-tune"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)), "file", "faults.jsonl" },
        };
        using var response = await client.PostAsync("/v1/files", form);
        return (await response.Json()).GetProperty("id").GetString()!;
    }

    public static async Task<HttpResponseMessage> CreateFineTuneAsync(HttpClient client, string file, int epochs) =>
        await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = Small, dataset = file, hyperparameters = new { learningRate = 0.005, epochs, batchSize = 4 } });

    public static Task<HttpResponseMessage> CreateWebhookEndpointAsync(HttpClient client, Uri receiver) =>
        client.PostAsJsonAsync("/v1/webhooks/endpoints", new
        {
            url = receiver.ToString(),
            events = new[] { "training.completed", "model.deployed", "batch.completed" },
        });

    public static Task<HttpResponseMessage> CreateBatchAsync(HttpClient client, int items) =>
        client.PostAsJsonAsync("/v1/batch/inference", new
        {
            modelId = Tiny,
            requests = Enumerable.Range(1, items).Select(i => new { id = $"fault-{i}", prompt = $"Prompt {i}", maxTokens = 4 }).ToArray(),
        });

    public static async Task<string> JobStatusAsync(HttpClient client, string jobId) =>
        (await (await client.GetAsync($"/v1/fine-tune/{jobId}")).Json()).GetProperty("status").GetString()!;

    /// <summary>
    /// How many "Deployed as" events the job has, once it has one: finetune records its own copy of ModelDeployed,
    /// which may land after the model.deployed webhook did.
    /// </summary>
    public static async Task<int> DeployedEventsAsync(HttpClient client, string jobId) =>
        (await Eventually.Get(async () => (int?)(await JobEventsAsync(client, jobId)).Count(m => m.StartsWith("Deployed as", StringComparison.Ordinal)),
            n => n >= 1, TimeSpan.FromSeconds(30), "the job's deployed event")).GetValueOrDefault();

    /// <summary>The job's event messages, oldest first.</summary>
    public static async Task<List<string>> JobEventsAsync(HttpClient client, string jobId)
    {
        var all = new List<string>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"/v1/fine-tune/{jobId}/events?limit=100{(cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")}")).Json();
            all.AddRange(page.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("message").GetString()!));
            cursor = page.GetProperty("hasMore").GetBoolean() ? page.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);
        all.Reverse();
        return all;
    }

    public static async Task<string> BatchStatusAsync(HttpClient client, string batchId) =>
        (await (await client.GetAsync($"/v1/batch/{batchId}")).Json()).GetProperty("status").GetString()!;

    /// <summary>Fine-tuned models the workspace can call, by id (a deployment announced twice would still be one model).</summary>
    public static async Task<List<string>> ModelIdsAsync(HttpClient client) =>
        [.. (await (await client.GetAsync("/v1/models")).Json()).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
}

/// <summary>One answered (or failed) request as the client saw it; status 0 when no response came.</summary>
internal sealed record Outcome(int Status, string? Code, TimeSpan? RetryAfter, string? RequestId, TimeSpan Elapsed)
{
    /// <summary>When the answer (or the failure) came.</summary>
    public DateTime At { get; } = DateTime.UtcNow;

    public bool Ok => Status == 200;
}

/// <summary>A webhook receiver on loopback: every POST with its <c>webhook-id</c>, event type and subject (job or batch id).</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    public WebhookReceiver()
    {
        var port = FaultRig.FreePort();
        Url = new Uri($"http://127.0.0.1:{port}/hook/");
        _listener.Prefixes.Add(Url.ToString());
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Url { get; }

    public ConcurrentQueue<(string WebhookId, string Event, string Subject)> Received { get; } = new();

    /// <summary>How many POSTs came for this event about this subject (one per event means no double effect).</summary>
    public int Count(string type, string subject) => Received.Count(r => r.Event == type && r.Subject == subject);

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using (var reader = new StreamReader(context.Request.InputStream))
            {
                var body = JsonDocument.Parse(await reader.ReadToEndAsync()).RootElement;
                var data = body.GetProperty("data");
                var subject = data.TryGetProperty("jobId", out var job) ? job.GetString()
                    : data.TryGetProperty("batchId", out var batch) ? batch.GetString() : null;
                Received.Enqueue((context.Request.Headers["webhook-id"] ?? "", body.GetProperty("event").GetString()!, subject ?? ""));
            }

            context.Response.StatusCode = 200;
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }
}
