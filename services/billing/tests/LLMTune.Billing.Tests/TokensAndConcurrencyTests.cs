using System.Net;
using System.Text;
using System.Text.Json;
using LLMTune.Billing.Features.Admission;
using LLMTune.Platform.Errors;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing.Tests;

/// <summary>Tokens per minute are reserved at their worst case and settled; requests in flight are held until the response ends.</summary>
public sealed class TokensAndConcurrencyTests
{
    private static readonly DateTimeOffset Start = new(2026, 7, 1, 9, 0, 0, TimeSpan.Zero);

    private static Dictionary<string, string?> Sandbox(long tokensPerMinute, long concurrent = 100_000, long concurrentPerKey = 100_000) => new()
    {
        ["Billing:Plans:Sandbox:MonthlyRequests"] = "100000",
        ["Billing:Plans:Sandbox:RequestsPerMinute"] = "100000",
        ["Billing:Plans:Sandbox:RequestsPerMinutePerKey"] = "100000",
        ["Billing:Plans:Sandbox:TokensPerMinute"] = tokensPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Billing:Plans:Sandbox:TokensPerMinutePerKey"] = "100000000",
        ["Billing:Plans:Sandbox:ConcurrentRequests"] = concurrent.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Billing:Plans:Sandbox:ConcurrentRequestsPerKey"] = concurrentPerKey.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static async Task<(bool Admitted, ApiException? Refusal, Admitted? Held)> TryAdmit(RequestAdmission admission, AdmissionRequest request)
    {
        try
        {
            return (true, null, await admission.AdmitAsync(request, CancellationToken.None));
        }
        catch (ApiException e)
        {
            return (false, e, null);
        }
    }

    [Fact]
    public async Task Two_hundred_concurrent_inference_requests_never_reserve_more_tokens_than_the_minute_has_and_settlement_frees_what_they_did_not_use()
    {
        await using var billing = await BillingHost.StartAsync(Start, Sandbox(tokensPerMinute: 5_000));
        var (workspaceId, _) = await billing.WorkspaceAsync("tokens-race");
        var admission = billing.Host.Services.GetRequiredService<RequestAdmission>();

        // Each reserves a worst case of 100 tokens: 5,000 a minute hold exactly 50, however they interleave.
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() =>
            TryAdmit(admission, new AdmissionRequest(workspaceId, "key_race", $"req_race_{i:D3}", false, 100)))));
        Assert.Equal(50, results.Count(r => r.Admitted));
        var refusals = results.Where(r => !r.Admitted).Select(r => r.Refusal!).ToList();
        Assert.All(refusals, e => Assert.Equal(("rate_limited", 429), (e.Code, e.Status)));
        Assert.All(refusals, e => Assert.Equal("0", e.Headers["x-ratelimit-remaining-tokens"]));

        // One of them completes having used 30: the 70 it did not use are free again, and no more.
        var requestId = results.Select((r, i) => (r, i)).First(x => x.r.Admitted).i;
        await billing.Host.Services.GetRequiredService<TokenBudget>().SettleAsync(
            workspaceId, "key_race", $"req_race_{requestId:D3}", 30, billing.Clock.GetUtcNow(), CancellationToken.None);
        var (fits, _, held) = await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_race", "req_after_1", false, 70));
        Assert.True(fits);
        Assert.Equal("0", RateLimitHeaders.For(held!.Limits, held.At)["x-ratelimit-remaining-tokens"]);
        var (over, refusal, _) = await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_race", "req_after_2", false, 1));
        Assert.False(over);
        Assert.Equal("60", refusal!.RetryAfter!.Value.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Requests that run no inference take no tokens and are not refused by the tokens limit.
        Assert.True((await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_race", "req_list", false, null))).Admitted);

        // The next minute has its own 5,000.
        billing.Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_race", "req_next_minute", false, 5_000))).Admitted);
    }

    [Fact]
    public async Task An_inference_request_reserves_its_body_and_max_tokens_and_is_settled_to_what_it_used()
    {
        await using var billing = await BillingHost.StartAsync(Start, Sandbox(tokensPerMinute: 2_000));
        var (_, client) = await billing.WorkspaceAsync("tokens-settle");

        const string body = """{"prompt":"Once upon a time","maxTokens":40,"temperature":0}""";
        var reserved = Encoding.UTF8.GetByteCount(body) + 40;
        var admitted = await client.PostAsync("/v1/models/llmtune/tiny/inference", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
        Assert.Equal("2000", admitted.One("x-ratelimit-limit-tokens"));
        Assert.Equal((2_000 - reserved).ToString(System.Globalization.CultureInfo.InvariantCulture), admitted.One("x-ratelimit-remaining-tokens"));

        // InferenceCompleted settles the reservation to the tokens the request used.
        var usage = await Eventually.Get(async () => await (await client.GetAsync("/v1/usage?groupBy=day")).Json(),
            u => u.GetProperty("total").GetProperty("requests").GetInt64() == 1, what: "the request's usage");
        var used = usage.GetProperty("total").GetProperty("promptTokens").GetInt64() + usage.GetProperty("total").GetProperty("completionTokens").GetInt64();
        Assert.InRange(used, 1, reserved - 1);
        var after = await Eventually.Get(async () => await client.GetAsync("/v1/keys"),
            r => r!.One("x-ratelimit-remaining-tokens") == (2_000 - used).ToString(System.Globalization.CultureInfo.InvariantCulture),
            what: "the settled token count");
        Assert.Equal(HttpStatusCode.OK, after!.StatusCode);

        // A request whose worst case exceeds the whole minute is refused before it runs, and takes nothing.
        var tooLarge = await client.PostAsync("/v1/models/llmtune/tiny/inference",
            new StringContent("""{"prompt":"Hi","maxTokens":3000}""", Encoding.UTF8, "application/json"));
        await tooLarge.AssertError(HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.Contains("max_tokens", await tooLarge.Content.ReadAsStringAsync());
        Assert.True(tooLarge.Headers.Contains("Retry-After"));

        // A request the endpoint refuses (400) ran no inference: its reservation comes back in full.
        var invalid = await client.PostAsync("/v1/models/llmtune/tiny/inference",
            new StringContent("""{"prompt":"Hi","maxTokens":40,"temperature":9}""", Encoding.UTF8, "application/json"));
        await invalid.AssertError(HttpStatusCode.BadRequest);
        await Eventually.Get(async () => await client.GetAsync("/v1/keys"),
            r => r!.One("x-ratelimit-remaining-tokens") == (2_000 - used).ToString(System.Globalization.CultureInfo.InvariantCulture),
            what: "the refused request's reservation given back");
    }

    [Fact]
    public async Task Only_the_concurrency_limit_of_requests_are_in_flight_at_once_and_an_ended_one_frees_its_slot()
    {
        await using var billing = await BillingHost.StartAsync(Start, Sandbox(tokensPerMinute: 1_000_000, concurrent: 3));
        var (workspaceId, _) = await billing.WorkspaceAsync("concurrency-race");
        var admission = billing.Host.Services.GetRequiredService<RequestAdmission>();

        var results = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() =>
            TryAdmit(admission, new AdmissionRequest(workspaceId, $"key_{i % 4}", $"req_cc_{i:D2}", false, null)))));
        Assert.Equal(3, results.Count(r => r.Admitted));
        var refusal = results.First(r => !r.Admitted).Refusal!;
        Assert.Equal(("rate_limited", TimeSpan.FromSeconds(1)), (refusal.Code, refusal.RetryAfter!.Value));
        Assert.Contains("\"concurrent\";r=0", refusal.Headers["RateLimit"]);
        // Refused requests count nowhere: the minute holds only the three admitted.
        var counters = billing.Host.Services.GetRequiredService<Counters>();
        Assert.Equal(3, await counters.ReadAsync(CounterWindows.WorkspaceMinute(workspaceId, billing.Clock.GetUtcNow()), CancellationToken.None));

        var first = results.First(r => r.Admitted).Held!;
        await admission.CompleteAsync(first, "req_done", succeeded: true);
        Assert.True((await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_0", "req_cc_next", false, null))).Admitted);
        Assert.False((await TryAdmit(admission, new AdmissionRequest(workspaceId, "key_0", "req_cc_over", false, null))).Admitted);
        Assert.Equal(3, await counters.ReadAsync(CounterWindows.InFlight(workspaceId), CancellationToken.None));
    }

    [Fact]
    public async Task A_stream_holds_its_slot_while_it_runs_and_gives_it_back_when_the_client_hangs_up()
    {
        await using var billing = await BillingHost.StartAsync(Start, Sandbox(tokensPerMinute: 1_000_000, concurrent: 2, concurrentPerKey: 2));
        var (workspaceId, client) = await billing.WorkspaceAsync("concurrency-stream");
        var counters = billing.Host.Services.GetRequiredService<Counters>();
        var keyId = KeyIdOf(await (await client.GetAsync("/v1/keys")).Json());
        await Eventually.True(async () => await counters.ReadAsync(CounterWindows.InFlight(workspaceId), CancellationToken.None) == 0,
            what: "the listing's slot given back");

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/llmtune/tiny/inference")
        {
            Content = new StringContent("""{"prompt":"Once upon a time","temperature":0,"maxTokens":200,"stream":true}""", Encoding.UTF8, "application/json"),
        };
        using (var stream = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            Assert.Contains("\"key-concurrent\";r=1, \"concurrent\";r=1", stream.One("RateLimit"));
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
            // Read until the first token arrives (after the event line), then hang up.
            var line = await reader.ReadLineAsync();
            while (line is not null && !line.StartsWith("data:", StringComparison.Ordinal))
            {
                line = await reader.ReadLineAsync();
            }

            Assert.NotNull(line);
        }

        // Cut short by the client (or finished, if the model was quicker): either way the slot comes back.
        await Eventually.True(async () => await counters.ReadAsync(CounterWindows.InFlight(workspaceId), CancellationToken.None) == 0
                && await counters.ReadAsync(CounterWindows.KeyInFlight(keyId), CancellationToken.None) == 0,
            what: "the stream's in-flight slots given back");
    }

    private static string KeyIdOf(JsonElement keys) => keys.GetProperty("data")[0].GetProperty("id").GetString()!;
}
