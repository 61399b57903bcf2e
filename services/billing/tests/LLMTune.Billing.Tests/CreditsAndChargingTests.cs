using System.Net;
using System.Net.Http.Json;
using LLMTune.Billing.Features.Charging;
using LLMTune.Contracts;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing.Tests;

/// <summary>Growth's prepaid balance: 402 at zero, idempotent top-ups, and charges from InferenceCompleted exactly once.</summary>
public sealed class CreditsAndChargingTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 5, 10, 12, 0, 0, TimeSpan.Zero);
    private BillingHost billing = null!;

    public async ValueTask InitializeAsync() => billing = await BillingHost.StartAsync(Start);

    public ValueTask DisposeAsync() => billing.DisposeAsync();

    private Meter Meter => billing.Host.Services.GetRequiredService<Meter>();

    private InferenceCompleted Completed(string workspaceId, string requestId, string model = "llmtune/tiny", string keyId = "key_test",
        int prompt = 5, int completion = 7, string finish = "stop") =>
        new(workspaceId, requestId, billing.Clock.GetUtcNow(), keyId, model, prompt, completion, 12, finish, Streamed: false, UsageId: requestId);

    [Fact]
    public async Task Growth_at_zero_gets_402_a_top_up_lets_it_through_and_charges_bring_it_back_to_zero()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("growth-credits", "growth");
        var refused = await client.GetAsync("/v1/keys");
        await refused.AssertError(HttpStatusCode.PaymentRequired, "insufficient_credits");

        var topUp = await billing.TopUpAsync(workspaceId, 0.002m, "invoice-1");
        Assert.True(topUp.GetProperty("applied").GetBoolean());
        Assert.Equal(0.002m, topUp.GetProperty("balanceUsd").GetDecimal());
        // The same reference again changes nothing.
        var replay = await billing.TopUpAsync(workspaceId, 0.002m, "invoice-1");
        Assert.False(replay.GetProperty("applied").GetBoolean());
        Assert.Equal(0.002m, replay.GetProperty("balanceUsd").GetDecimal());

        var admitted = await client.GetAsync("/v1/keys");
        Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
        Assert.Equal("600", admitted.One("x-ratelimit-limit-requests"));
        Assert.Equal("599", admitted.One("x-ratelimit-remaining-requests"));
        // Growth has no monthly quota: only the minute limits are policies.
        Assert.Equal("\"key-minute\";q=600;w=60, \"minute\";q=600;w=60, "
            + "\"key-concurrent\";q=32;qu=\"concurrent-requests\", \"concurrent\";q=32;qu=\"concurrent-requests\"", admitted.One("RateLimit-Policy"));

        // Two requests at $0.001 use the balance up.
        Assert.True(await Meter.ChargeAsync(Completed(workspaceId, "req_growth_1"), CancellationToken.None));
        Assert.True(await Meter.ChargeAsync(Completed(workspaceId, "req_growth_2"), CancellationToken.None));
        Assert.Equal(0m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
        // The charge that reached zero announced it (in the same write); the gateway refuses once it has heard.
        await billing.AdmissionSeesCreditsAsync(workspaceId, false);
        await (await client.GetAsync("/v1/keys")).AssertError(HttpStatusCode.PaymentRequired, "insufficient_credits");

        await billing.TopUpAsync(workspaceId, 5m, "invoice-2");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/keys")).StatusCode);
        Assert.Equal(5m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
    }

    [Fact]
    public async Task Top_ups_are_checked_and_need_the_operator()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("growth-bad-credits", "growth");
        using var admin = billing.Operator();
        await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd = -1, reference = "x" }))
            .AssertError(HttpStatusCode.BadRequest, param: "amountUsd");
        await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd = 0.0000001m, reference = "x" }))
            .AssertError(HttpStatusCode.BadRequest, param: "amountUsd");
        await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd = 1 }))
            .AssertError(HttpStatusCode.BadRequest, param: "reference");
        await (await admin.PostAsJsonAsync("/admin/workspaces/ws_missing/credits", new { amountUsd = 1, reference = "x" }))
            .AssertError(HttpStatusCode.NotFound, "workspace_not_found");
        // A workspace's own key is not the operator.
        await (await client.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd = 1, reference = "x" }))
            .AssertError(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Charges_that_arrive_together_are_each_counted_once_across_workspaces_days_and_repeats()
    {
        var (first, firstClient) = await billing.WorkspaceAsync("growth-together-1", "growth");
        var (second, _) = await billing.WorkspaceAsync("growth-together-2", "growth");
        await billing.TopUpAsync(first, 1m, "start");
        await billing.TopUpAsync(second, 1m, "start");

        // 300 charges at once (more than one group), every fifth one twice, over two workspaces and two keys.
        var charges = Enumerable.Range(0, 300)
            .Select(i => Completed(i % 3 == 0 ? second : first, $"req_together_{i}", keyId: i % 2 == 0 ? "key_a" : "key_b", prompt: 1, completion: 2))
            .ToList();
        var answers = await Task.WhenAll(charges.Concat(charges.Where((_, i) => i % 5 == 0)).Select(c => Task.Run(() => Meter.ChargeAsync(c, CancellationToken.None))));

        Assert.Equal(300, answers.Count(charged => charged)); // each repeat answered "charged already"
        var usage = await Usage(firstClient, "key");
        Assert.Equal(200, usage.GetProperty("total").GetProperty("requests").GetInt64());
        Assert.Equal(200, usage.GetProperty("total").GetProperty("promptTokens").GetInt64());
        Assert.Equal(0.8m, (await QuotaAndRateLimitTests.Billing(firstClient)).GetProperty("balanceUsd").GetDecimal());
        Assert.Equal(1m - 0.1m, await BalanceUsdAsync(second));
    }

    private async Task<decimal> BalanceUsdAsync(string workspaceId) =>
        await billing.Host.Services.GetRequiredService<LLMTune.Billing.Features.Accounts.Balances>().BalanceMicrosAsync(workspaceId, CancellationToken.None) / 1_000_000m;

    [Fact]
    public async Task A_redelivered_InferenceCompleted_is_charged_once_and_usage_rolls_up_by_day_model_and_key()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("growth-usage", "growth");
        await billing.TopUpAsync(workspaceId, 1m, "start");

        var first = Completed(workspaceId, "req_usage_1", model: "llmtune/tiny", keyId: "key_a", prompt: 10, completion: 20);
        Assert.True(await Meter.ChargeAsync(first, CancellationToken.None));
        Assert.False(await Meter.ChargeAsync(first, CancellationToken.None));

        // Through the bus too: the consumer charges a published event, and its redelivery not again.
        var bus = billing.Host.Services.GetRequiredService<IBus>();
        var second = Completed(workspaceId, "req_usage_2", model: "other/model", keyId: "key_b", prompt: 1, completion: 2);
        await bus.Publish(second);
        await bus.Publish(second);
        await Eventually.True(async () => (await Usage(client, "day")).GetProperty("total").GetProperty("requests").GetInt64() >= 2,
            what: "the published charge");

        billing.Clock.Advance(TimeSpan.FromDays(1));
        Assert.True(await Meter.ChargeAsync(Completed(workspaceId, "req_usage_3", keyId: "key_a", prompt: 3, completion: 4), CancellationToken.None));
        Assert.False(await Meter.ChargeAsync(second, CancellationToken.None));

        var byDay = await Usage(client, "day");
        Assert.Equal(3, byDay.GetProperty("total").GetProperty("requests").GetInt64());
        Assert.Equal(14, byDay.GetProperty("total").GetProperty("promptTokens").GetInt64());
        Assert.Equal(26, byDay.GetProperty("total").GetProperty("completionTokens").GetInt64());
        Assert.Equal(0.003m, byDay.GetProperty("total").GetProperty("costUsd").GetDecimal());
        var days = byDay.GetProperty("data").EnumerateArray().Select(d => (d.GetProperty("day").GetString(), d.GetProperty("requests").GetInt64())).ToList();
        Assert.Equal([("2026-05-10", 2L), ("2026-05-11", 1L)], days);

        var byModel = (await Usage(client, "model")).GetProperty("data").EnumerateArray()
            .ToDictionary(d => d.GetProperty("model").GetString()!, d => d.GetProperty("requests").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["llmtune/tiny"] = 2, ["other/model"] = 1 }, byModel);
        var byKey = (await Usage(client, "key")).GetProperty("data").EnumerateArray()
            .ToDictionary(d => d.GetProperty("keyId").GetString()!, d => d.GetProperty("costUsd").GetDecimal());
        Assert.Equal(new Dictionary<string, decimal> { ["key_a"] = 0.002m, ["key_b"] = 0.001m }, byKey);

        Assert.Equal(0.997m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
        var onlyFirstDay = await (await client.GetAsync("/v1/usage?from=2026-05-10&to=2026-05-10")).Json();
        Assert.Equal(2, onlyFirstDay.GetProperty("total").GetProperty("requests").GetInt64());
        await (await client.GetAsync("/v1/usage?groupBy=hour")).AssertError(HttpStatusCode.BadRequest, param: "groupBy");
        await (await client.GetAsync("/v1/usage?from=yesterday")).AssertError(HttpStatusCode.BadRequest, param: "from");
        await (await client.GetAsync("/v1/usage?from=2026-05-11&to=2026-05-10")).AssertError(HttpStatusCode.BadRequest, param: "to");
    }

    [Fact]
    public async Task A_streamed_request_through_the_host_is_billed()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("growth-stream", "growth");
        await billing.TopUpAsync(workspaceId, 1m, "start");

        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/llmtune/tiny/inference")
        {
            Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens = 200, stream = true }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("599", response.One("x-ratelimit-remaining-requests"));
        Assert.Contains("data:", await response.Content.ReadAsStringAsync());

        var usage = await Eventually.Get(async () => await Usage(client, "model"),
            u => u.GetProperty("total").GetProperty("requests").GetInt64() == 1, what: "the stream's charge");
        Assert.InRange(usage.GetProperty("total").GetProperty("completionTokens").GetInt64(), 1, 200);
        Assert.Equal(0.999m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
    }

    [Fact]
    public async Task A_stream_cut_short_is_billed_for_what_it_produced()
    {
        // What inference publishes when the client hangs up mid-stream (its StreamingAndUsageTests show it does).
        var (workspaceId, client) = await billing.WorkspaceAsync("growth-cut-short", "growth");
        await billing.TopUpAsync(workspaceId, 1m, "start");
        var cut = Completed(workspaceId, "req_cut_short", prompt: 4, completion: 9, finish: "cancelled") with { Streamed = true };
        await billing.Host.Services.GetRequiredService<IBus>().Publish(cut);

        var usage = await Eventually.Get(async () => await Usage(client, "day"),
            u => u.GetProperty("total").GetProperty("requests").GetInt64() == 1, what: "the cut-short stream's charge");
        Assert.Equal(9, usage.GetProperty("total").GetProperty("completionTokens").GetInt64());
        Assert.Equal(0.999m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
    }

    private static async Task<System.Text.Json.JsonElement> Usage(HttpClient client, string groupBy) =>
        await (await client.GetAsync($"/v1/usage?from=2026-05-01&to=2026-05-31&groupBy={groupBy}")).Json();
}
