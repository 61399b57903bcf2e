using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Webhooks.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StandardWebhooks;

namespace LLMTune.Webhooks.Tests;

/// <summary>Retries, Retry-After, 410, restarts and replicas, on the host with a fake clock.</summary>
public sealed class DeliveryTests
{
    private static BatchCompleted Batch(string workspaceId, DateTimeOffset at, string? webhookUrl = null, string? batchId = null) =>
        new(workspaceId, "req_test", at, batchId ?? "batch_" + Guid.NewGuid().ToString("N")[..12], "llmtune/tiny", 2, 1, webhookUrl);

    private static string DeliveryId(string eventType, string subject, string endpointId) =>
        DeliveryStore.IdFor(WebhookEvent.Create(eventType, new BatchCompleted("", "", default, "", "", 0, 0, null), subject, new { }).Id, endpointId);

    [Fact]
    public async Task A_receiver_failing_three_times_gets_the_fourth_attempt_on_schedule_with_the_same_webhook_id()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync(clock);
        receiver.Then(new Reply(500), new Reply(502), new Reply(500));
        var (endpointId, secret, workspace) = await host.CreateEndpointAsync(receiver.Url(), "batch.completed");

        var batch = Batch(workspace, clock.GetUtcNow());
        await host.PublishAsync(batch);
        var deliveryId = DeliveryId(WebhookEvent.BatchCompleted, batch.BatchId, endpointId);

        var start = clock.GetUtcNow();
        foreach (var (wait, attempts) in new[] { (TimeSpan.FromSeconds(5), 2), (TimeSpan.FromMinutes(5), 3), (TimeSpan.FromMinutes(30), 4) })
        {
            var pending = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("attemptCount").GetInt32() == attempts - 1 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, $"attempt {attempts - 1} stored");
            // Due exactly one schedule step after the previous attempt (jitter is off in these tests).
            Assert.Equal(clock.GetUtcNow().UtcDateTime + wait, pending.GetProperty("nextAttemptAt").GetDateTime(), TimeSpan.FromSeconds(1));
            clock.Advance(wait - TimeSpan.FromSeconds(1));
            Assert.Equal(attempts - 1, receiver.Requests.Count); // not early
            clock.Advance(TimeSpan.FromSeconds(1));
            await Eventually.True(() => receiver.Requests.Count == attempts, what: $"attempt {attempts}");
        }

        var done = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("status").GetString() == "succeeded", "success");
        Assert.Equal([500, 502, 500, 200], done.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("statusCode").GetInt32()));
        Assert.Equal("answer 500", done.GetProperty("attempts")[0].GetProperty("response").GetString());
        Assert.Single(receiver.Requests.Select(r => r.WebhookId).Distinct());
        Assert.Equal(done.GetProperty("webhookId").GetString(), receiver.Requests[0].WebhookId);
        Assert.True(clock.GetUtcNow() - start >= TimeSpan.FromMinutes(35));

        // The last (on-time) attempt verifies; its body is the seed's envelope.
        var last = receiver.Requests[^1];
        using var body = JsonDocument.Parse(last.Body);
        Assert.Equal(["event", "data", "deliveredAt"], body.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(batch.BatchId, body.RootElement.GetProperty("data").GetProperty("batchId").GetString());
        Assert.InRange(long.Parse(last.Headers["webhook-timestamp"]!, System.Globalization.CultureInfo.InvariantCulture), clock.GetUtcNow().ToUnixTimeSeconds() - 2, clock.GetUtcNow().ToUnixTimeSeconds());
        _ = secret;
    }

    [Fact]
    public async Task Retry_after_on_429_is_honoured_and_a_410_disables_the_endpoint_until_it_is_enabled_and_replayed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync(clock);
        receiver.Then(new Reply(429, RetryAfter: "120"), new Reply(410));
        var (endpointId, _, workspace) = await host.CreateEndpointAsync(receiver.Url());

        var batch = Batch(workspace, clock.GetUtcNow());
        await host.PublishAsync(batch);
        var deliveryId = DeliveryId(WebhookEvent.BatchCompleted, batch.BatchId, endpointId);
        var first = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("attemptCount").GetInt32() == 1 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, "first attempt");
        Assert.Equal(clock.GetUtcNow().UtcDateTime.AddSeconds(120), first.GetProperty("nextAttemptAt").GetDateTime(), TimeSpan.FromSeconds(1));

        clock.Advance(TimeSpan.FromSeconds(5)); // the schedule's first step; Retry-After says 120 s
        clock.Advance(TimeSpan.FromSeconds(110));
        Assert.Single(receiver.Requests);
        clock.Advance(TimeSpan.FromSeconds(5));

        var gone = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("status").GetString() == "failed", "the 410 to end the delivery");
        Assert.Equal(2, gone.GetProperty("attemptCount").GetInt32());
        using var client = host.Client();
        var endpoint = await (await client.GetAsync($"/v1/webhooks/endpoints/{endpointId}")).Json();
        Assert.False(endpoint.GetProperty("enabled").GetBoolean());
        Assert.Contains("410", endpoint.GetProperty("disabledReason").GetString(), StringComparison.Ordinal);

        // Disabled: new events are not delivered to it; replay is refused until it is enabled again.
        await host.PublishAsync(Batch(workspace, clock.GetUtcNow()));
        var since = clock.GetUtcNow().UtcDateTime.AddHours(-1);
        await (await client.PostAsJsonAsync($"/v1/webhooks/endpoints/{endpointId}/replay", new { since })).AssertError(HttpStatusCode.Conflict, "endpoint_disabled");
        await (await client.PatchAsJsonAsync($"/v1/webhooks/endpoints/{endpointId}", new { enabled = true })).Json();
        var replay = await (await client.PostAsJsonAsync($"/v1/webhooks/endpoints/{endpointId}/replay", new { since })).Json(HttpStatusCode.Accepted);
        Assert.Equal(1, replay.GetProperty("replayed").GetInt32());
        await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("status").GetString() == "succeeded", "the replayed delivery");
        Assert.Equal(3, receiver.Requests.Count);
        Assert.Single(receiver.Requests.Select(r => r.WebhookId).Distinct());
    }

    [Fact]
    public async Task A_restart_during_the_backoff_delivers_once_after_the_restart()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        receiver.Then(new Reply(503));
        var host = await WebhooksHost.StartAsync(clock);
        var data = host.DataDirectory;
        var (endpointId, secret, workspace) = await host.CreateEndpointAsync(receiver.Url());
        var batch = Batch(workspace, clock.GetUtcNow());
        await host.PublishAsync(batch);
        var deliveryId = DeliveryId(WebhookEvent.BatchCompleted, batch.BatchId, endpointId);
        await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("attemptCount").GetInt32() == 1 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, "the failed first attempt");
        await host.DisposeAsync();

        var later = new FakeTimeProvider(clock.GetUtcNow() + TimeSpan.FromSeconds(6));
        await using var restarted = await WebhooksHost.StartAsync(later, data);
        var done = await restarted.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("status").GetString() == "succeeded", "delivery after the restart");

        Assert.Equal(2, done.GetProperty("attemptCount").GetInt32());
        Assert.Equal([503, 200], receiver.Requests.Select(r => r.AnsweredWith));
        Assert.Single(receiver.Requests.Select(r => r.WebhookId).Distinct());
        // The secret survived the restart encrypted under the same key: the second attempt verifies.
        new StandardWebhook(secret).Verify(receiver.Requests[1].Body, receiver.Requests[1].Headers);
    }

    [Fact]
    public async Task Two_workers_on_one_store_deliver_each_event_once_and_a_repeated_event_makes_no_second_delivery()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync();
        var (_, _, workspace) = await host.CreateEndpointAsync(receiver.Url(), "training.started");
        // Another replica's worker: the same store, its own hand-off (it gets nothing from this process's intake and
        // must not claim what that intake leased to this process's worker).
        var second = ActivatorUtilities.CreateInstance<DeliveryWorker>(host.Host.Services, new DeliveryHandOff(new DeliverySignal()));
        await second.StartAsync(CancellationToken.None);
        try
        {
            var batches = Enumerable.Range(0, 40).Select(i => Batch(workspace, DateTimeOffset.UtcNow, receiver.Url($"/batch/{i}"), $"batch_{i}")).ToList();
            foreach (var batch in batches)
            {
                await host.PublishAsync(batch);
            }

            await host.PublishAsync(batches[0]); // the bus may deliver a message twice
            await Eventually.True(async () => (await host.DeliveriesAsync("&status=succeeded")).Count == 40, what: "40 deliveries to succeed");

            Assert.Equal(40, receiver.Requests.Count);
            Assert.Equal(40, receiver.Requests.Select(r => r.WebhookId).Distinct().Count());
            Assert.Equal(40, (await host.DeliveriesAsync("&event=batch.completed")).Count);
            Assert.All(receiver.Requests, r => Assert.Equal("batch.completed", r.Event));
        }
        finally
        {
            await second.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task An_endpoint_failing_for_five_days_is_disabled()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync(clock);
        receiver.Then(Enumerable.Repeat(new Reply(500), 200).ToArray());
        var (endpointId, _, workspace) = await host.CreateEndpointAsync(receiver.Url());

        using var client = host.Client();
        for (var day = 0; day < 5; day++)
        {
            var batch = Batch(workspace, clock.GetUtcNow());
            await host.PublishAsync(batch);
            var id = DeliveryId(WebhookEvent.BatchCompleted, batch.BatchId, endpointId);
            await host.WaitForDeliveryAsync(id, d => d.GetProperty("attemptCount").GetInt32() >= 1, $"day {day}'s attempt");
            Assert.True((await (await client.GetAsync($"/v1/webhooks/endpoints/{endpointId}")).Json()).GetProperty("enabled").GetBoolean(), $"disabled too early, on day {day}");
            clock.Advance(TimeSpan.FromDays(1));
        }

        // Day 5: the next failed attempt (a retry due now, or a new event) disables it.
        await host.PublishAsync(Batch(workspace, clock.GetUtcNow()));
        var endpoint = await Eventually.Get<JsonElement?>(async () => await (await client.GetAsync($"/v1/webhooks/endpoints/{endpointId}")).Json(),
            e => e is { } x && !x.GetProperty("enabled").GetBoolean(), TimeSpan.FromSeconds(30), "the endpoint to be disabled") ?? default;
        Assert.False(endpoint.GetProperty("enabled").GetBoolean(), endpoint.ToString());
        Assert.Contains("5 days", endpoint.GetProperty("disabledReason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_workers_claiming_from_the_store_alone_deliver_each_event_once()
    {
        await using var receiver = await Receiver.StartAsync();
        // This process only takes events in (no worker, so nothing is handed over): two other workers share the store.
        await using var host = await WebhooksHost.StartAsync(overrides: new Dictionary<string, string?> { ["Webhooks:Delivery:Enabled"] = "false" });
        var (_, _, workspace) = await host.CreateEndpointAsync(receiver.Url(), "training.started");
        var delivering = Options.Create(new WebhooksOptions { Delivery = new DeliveryOptions { Jitter = 0, PollInterval = TimeSpan.FromMilliseconds(50) } });
        var workers = Enumerable.Range(0, 2)
            .Select(_ => ActivatorUtilities.CreateInstance<DeliveryWorker>(host.Host.Services, new DeliveryHandOff(new DeliverySignal()), delivering))
            .ToList();
        foreach (var worker in workers)
        {
            await worker.StartAsync(CancellationToken.None);
        }

        try
        {
            foreach (var i in Enumerable.Range(0, 40))
            {
                await host.PublishAsync(Batch(workspace, DateTimeOffset.UtcNow, receiver.Url($"/batch/{i}"), $"batch_{i}"));
            }

            await Eventually.True(async () => (await host.DeliveriesAsync("&status=succeeded")).Count == 40, what: "40 deliveries to succeed");
            Assert.Equal(40, receiver.Requests.Count);
            Assert.Equal(40, receiver.Requests.Select(r => r.WebhookId).Distinct().Count());
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.StopAsync(CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task A_rotated_workspace_secret_signs_beside_the_old_one_for_24_hours_then_alone()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync(clock);
        using var client = host.Client();
        var (_, _, workspace) = await host.CreateEndpointAsync(receiver.Url("/endpoint"), "training.started");
        var oldSecret = (await (await client.GetAsync("/v1/webhooks/secret")).Json()).GetProperty("secret").GetString()!;
        await DeliverAsync(); // signs with the old secret alone, and leaves it in the signing cache
        var newSecret = (await (await client.PostAsync("/v1/webhooks/secret/rotate", null)).Json()).GetProperty("secret").GetString()!;

        // Signatures computed by the third-party library, compared with what was sent, newest first.
        var during = await DeliverAsync();
        Assert.Equal([Expected(newSecret, during), Expected(oldSecret, during)], Signatures(during));

        clock.Advance(TimeSpan.FromHours(23));
        Assert.Equal(2, Signatures(await DeliverAsync()).Length);

        clock.Advance(TimeSpan.FromHours(1));
        var after = await DeliverAsync();
        Assert.Equal([Expected(newSecret, after)], Signatures(after));

        async Task<Received> DeliverAsync()
        {
            var before = receiver.Requests.Count;
            await host.PublishAsync(Batch(workspace, clock.GetUtcNow(), receiver.Url("/callback")));
            await Eventually.True(() => receiver.Requests.Count == before + 1, what: "the delivery");
            return receiver.Requests[^1];
        }

        static string[] Signatures(Received r) => r.Headers["webhook-signature"].ToString().Split(' ');

        static string Expected(string secret, Received r) => new StandardWebhook(secret).Sign(
            r.WebhookId, DateTimeOffset.FromUnixTimeSeconds(long.Parse(r.Headers["webhook-timestamp"]!, System.Globalization.CultureInfo.InvariantCulture)), r.Body);
    }

    [Fact]
    public async Task Only_the_first_kilobyte_of_an_answer_is_stored_with_the_attempt()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync(clock);
        var answer = string.Concat(Enumerable.Range(0, 500).Select(i => $"{i:D4}|")); // 2,500 characters, each position recognisable
        receiver.Then(new Reply(500, Body: answer));
        var (endpointId, _, workspace) = await host.CreateEndpointAsync(receiver.Url());
        var batch = Batch(workspace, clock.GetUtcNow());
        await host.PublishAsync(batch);

        var attempted = await host.WaitForDeliveryAsync(DeliveryId(WebhookEvent.BatchCompleted, batch.BatchId, endpointId),
            d => d.GetProperty("attemptCount").GetInt32() == 1 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, "the failed attempt");
        Assert.Equal(answer[..1024], attempted.GetProperty("attempts")[0].GetProperty("response").GetString());
    }

    [Fact]
    public void Hand_offs_stop_past_their_limit_and_resume_only_once_the_worker_has_caught_up()
    {
        var handOff = new DeliveryHandOff(new DeliverySignal());
        Assert.Null(handOff.TryReserve()); // no worker in this process: stored due now, for any worker

        handOff.Open("worker", TimeSpan.FromMinutes(2), limit: 2);
        Assert.Equal(new DeliveryHandOff.Lease("worker", TimeSpan.FromMinutes(2)), handOff.TryReserve());
        Assert.NotNull(handOff.TryReserve());
        Assert.Null(handOff.TryReserve()); // full: this one waits in the store
        handOff.Add(new WebhookDelivery { Id = "whd_a" });
        handOff.Cancel(); // the second was a duplicate

        // Room again, but a stored one is older than anything handed over now would be: not until the worker caught up.
        Assert.Null(handOff.TryReserve());
        handOff.CaughtUp();
        Assert.Null(handOff.TryReserve()); // one still waits in memory
        Assert.True(handOff.TryTake(out var taken));
        Assert.Equal("whd_a", taken.Id);
        handOff.CaughtUp();
        Assert.NotNull(handOff.TryReserve());

        handOff.Close();
        Assert.Null(handOff.TryReserve());
    }
}
