using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Engine.TinyModel;
using LLMTune.Platform.Modules;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using LLMTune.Testing;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.IntegrationTests;

/// <summary>
/// RabbitMQ cut off (through a <see cref="TcpGate"/>) in the middle of inference requests and a fine-tune creation:
/// nothing waits on the broker, and once it is back every usage event arrives, each handled once.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class BrokerOutageTests(RabbitMqBroker broker)
{
    private const int RequestsPerPhase = 20;

    [Fact]
    public async Task With_the_broker_cut_requests_and_a_fine_tune_answer_at_normal_speed_and_every_event_arrives_once_it_is_back()
    {
        var url = new Uri(broker.RequireUrl());
        var model = BundledModel.Find();
        Assert.SkipWhen(model is null, "models/llmtune-tiny.gguf has not been built.");
        var ct = TestContext.Current.CancellationToken;
        await using var gate = new TcpGate(url.Host == "localhost" ? "127.0.0.1" : url.Host, url.Port);
        var throughGate = new UriBuilder(url) { Host = "127.0.0.1", Port = gate.Port }.Uri.ToString();

        // Billing's stand-in: a separate service on the broker itself that records every event it is handed.
        await using var meter = await ModuleHost.StartAsync([new MeterModule()], new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "RabbitMq",
            ["ConnectionStrings:RabbitMq"] = url.ToString(),
        });
        await using var host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "RabbitMq",
            ["ConnectionStrings:RabbitMq"] = throughGate,
            ["Inference:Models:llmtune/tiny:Path"] = model,
            ["Finetune:BaseModels:llmtune/tiny:Path"] = model,
            ["Finetune:Worker:PollInterval"] = "00:00:00.200",
            ["Outbox:RetryMaxDelay"] = "00:00:02",
            ["Outbox:PublishTimeout"] = "00:00:03",
        });
        await Eventually.True(async () => await ReadyAsync(meter.Address) && await ReadyAsync(host.Address), TimeSpan.FromSeconds(90), "both buses connected");
        using var client = host.Client(host.InitialKey);

        var before = await RequestsAsync(client, ct);
        gate.Close();
        var during = await RequestsAsync(client, ct);
        var upload = await TimedAsync(() => UploadAsync(client, ct));
        var create = await TimedAsync(() => client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny", dataset = upload.Result, epochs = 1, batchSize = 4 }, ct));
        Assert.Equal(HttpStatusCode.Created, create.Result.StatusCode);
        var jobId = (await create.Result.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetString()!;
        var outbox = host.Services.GetRequiredService<IDocumentStore>().Collection<OutboxMessage>(OutboxMessage.Collection);
        await Eventually.True(async () => await outbox.CountAsync(m => m.SentAt == null && m.LastError != null, ct) > 0,
            TimeSpan.FromSeconds(30), "the dispatcher failing to publish while the broker is away");
        var pendingDuringOutage = await outbox.CountAsync(m => m.SentAt == null, ct);
        gate.Open();
        var after = await RequestsAsync(client, ct);

        var succeeded = before.Concat(during).Concat(after).ToList();
        var received = meter.Services.GetRequiredService<Metered>();
        try
        {
            await Eventually.True(() => succeeded.All(r => received.Usage.ContainsKey(r.RequestId)), TimeSpan.FromSeconds(120), "every usage event after the outage");
        }
        catch (TimeoutException e)
        {
            var pending = await outbox.FindAsync(m => m.SentAt == null, null, ct);
            var missing = succeeded.Where(r => !received.Usage.ContainsKey(r.RequestId)).Select(r => before.Contains(r) ? "before" : during.Contains(r) ? "during" : "after");
            throw new TimeoutException($"{e.Message}; missing: {string.Join(",", missing.GroupBy(m => m).Select(g => $"{g.Key}={g.Count()}"))}; received {received.Usage.Count}; "
                + $"outbox pending {pending.Count}: {string.Join(" | ", pending.Take(3).Select(m => $"{m.MessageType} attempts={m.Attempts} due={m.DueAt:O} error={m.LastError}"))}", e);
        }
        await Eventually.True(() => received.Queued.ContainsKey(jobId), TimeSpan.FromSeconds(120), "TrainingQueued after the outage");

        var normal = before.Max(r => r.Elapsed);
        var slowest = during.Max(r => r.Elapsed);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"broker cut for {during.Count} requests + a fine-tune: slowest request {slowest.TotalMilliseconds:F0} ms (before: {normal.TotalMilliseconds:F0} ms), " +
            $"upload {upload.Elapsed.TotalMilliseconds:F0} ms, create {create.Elapsed.TotalMilliseconds:F0} ms; usage events {received.Usage.Count(u => succeeded.Any(r => r.RequestId == u.Key))}/{succeeded.Count}, " +
            $"handled twice: {received.Usage.Values.Count(n => n > 1)}; events waiting in the outbox during the outage: {pendingDuringOutage}");
        Assert.True(slowest < TimeSpan.FromSeconds(2) + normal * 3, $"a request took {slowest} with the broker down (normally {normal})");
        Assert.True(create.Elapsed < TimeSpan.FromSeconds(2), $"creating the fine-tune took {create.Elapsed} with the broker down");
        Assert.All(received.Usage.Values, n => Assert.Equal(1, n));
        Assert.Equal(1, received.Queued[jobId]);
    }

    private sealed record Answered(string RequestId, TimeSpan Elapsed);

    private static async Task<List<Answered>> RequestsAsync(HttpClient client, CancellationToken ct)
    {
        var answered = new List<Answered>();
        for (var i = 0; i < RequestsPerPhase; i++)
        {
            var watch = Stopwatch.StartNew();
            using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = "llmtune/tiny",
                messages = new[] { new { role = "user", content = $"Hello {i}" } },
                max_tokens = 4,
            }, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            answered.Add(new Answered(response.Headers.GetValues("x-request-id").Single(), watch.Elapsed));
        }

        return answered;
    }

    private static async Task<string> UploadAsync(HttpClient client, CancellationToken ct)
    {
        var lines = string.Join('\n', Enumerable.Range(0, 8).Select(i =>
            JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Ping {i}?" }, new { role = "assistant", content = "pong" } } })));
        using var form = new MultipartFormDataContent
        {
            { new StringContent("fine-tune"), "purpose" },
            { new StringContent(lines), "file", "outage.jsonl" },
        };
        using var response = await client.PostAsync("/v1/files", form, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<(T Result, TimeSpan Elapsed)> TimedAsync<T>(Func<Task<T>> call)
    {
        var watch = Stopwatch.StartNew();
        var result = await call();
        return (result, watch.Elapsed);
    }

    private static async Task<bool> ReadyAsync(Uri address)
    {
        using var client = new HttpClient { BaseAddress = address };
        using var response = await client.GetAsync("/readyz");
        return response.StatusCode == HttpStatusCode.OK;
    }

    private sealed class Metered
    {
        public ConcurrentDictionary<string, int> Usage { get; } = new();

        public ConcurrentDictionary<string, int> Queued { get; } = new();
    }

    private sealed class UsageConsumer(Metered metered) : IConsumer<InferenceCompleted>, IConsumer<TrainingQueued>
    {
        public Task Consume(ConsumeContext<InferenceCompleted> context)
        {
            metered.Usage.AddOrUpdate(context.Message.CorrelationId, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<TrainingQueued> context)
        {
            metered.Queued.AddOrUpdate(context.Message.JobId, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        }
    }

    private sealed class MeterModule : IServiceModule
    {
        public string Name => "outage-meter";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology) => builder.Services.AddSingleton<Metered>();

        public void AddConsumers(IBusRegistrationConfigurator bus) => bus.AddConsumer<UsageConsumer>();

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
        }
    }
}
