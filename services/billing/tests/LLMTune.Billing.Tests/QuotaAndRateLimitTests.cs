using System.Net;
using System.Net.Http.Json;

namespace LLMTune.Billing.Tests;

/// <summary>Sandbox's monthly quota and per-minute limits through the real host, with their headers, on a fake clock.</summary>
public sealed class QuotaAndRateLimitTests : IAsyncLifetime
{
    // One hour before the month ends: 1,000 requests at 60 a minute fit before midnight.
    private static readonly DateTimeOffset Start = new(2026, 3, 31, 23, 0, 0, TimeSpan.Zero);
    private BillingHost billing = null!;

    public async ValueTask InitializeAsync() => billing = await BillingHost.StartAsync(Start);

    public ValueTask DisposeAsync() => billing.DisposeAsync();

    [Fact]
    public async Task A_plan_change_applies_to_the_next_request()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("plan-change");
        Assert.Equal("60", (await client.GetAsync("/v1/keys")).One("x-ratelimit-limit-requests"));

        using var admin = billing.Operator();
        (await admin.PutAsJsonAsync($"/admin/workspaces/{workspaceId}/plan", new { plan = "scale" })).EnsureSuccessStatusCode();

        // Scale has no monthly cap, so the key's minute is the tightest: 6,000.
        Assert.Equal("6000", (await client.GetAsync("/v1/keys")).One("x-ratelimit-limit-requests"));
    }

    [Fact]
    public async Task The_1001st_sandbox_request_of_the_month_is_refused_and_the_next_month_starts_afresh()
    {
        var (_, client) = await billing.WorkspaceAsync("sandbox-quota");

        var first = await client.GetAsync("/v1/keys");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        // The tightest requests limit is the key's minute (59 left of 60); the tokens limit is the minute's 40,000.
        Assert.Equal("60", first.One("x-ratelimit-limit-requests"));
        Assert.Equal("59", first.One("x-ratelimit-remaining-requests"));
        Assert.Equal("1m0s", first.One("x-ratelimit-reset-requests"));
        Assert.Equal("40000", first.One("x-ratelimit-limit-tokens"));
        Assert.Equal("40000", first.One("x-ratelimit-remaining-tokens"));
        Assert.Equal("1m0s", first.One("x-ratelimit-reset-tokens"));
        Assert.Equal("\"key-minute\";q=60;w=60, \"minute\";q=60;w=60, \"monthly\";q=1000;w=2678400, "
            + "\"key-concurrent\";q=4;qu=\"concurrent-requests\", \"concurrent\";q=4;qu=\"concurrent-requests\"", first.One("RateLimit-Policy"));
        // This request is the one in flight while its headers are written.
        Assert.Equal("\"key-minute\";r=59;t=60, \"minute\";r=59;t=60, \"monthly\";r=999;t=3600, \"key-concurrent\";r=3, \"concurrent\";r=3",
            first.One("RateLimit"));

        // The rest of this minute's 60, then the 61st is rate limited and does not count against the month.
        for (var i = 2; i <= 60; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/keys")).StatusCode);
        }

        billing.Clock.Advance(TimeSpan.FromSeconds(15));
        var limited = await client.GetAsync("/v1/keys");
        await limited.AssertError(HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.Equal("45", limited.One("Retry-After"));
        Assert.Equal("0", limited.One("x-ratelimit-remaining-requests"));
        Assert.Equal("45s", limited.One("x-ratelimit-reset-requests"));
        // (The concurrency entries that follow depend on whether the previous response has fully ended yet.)
        Assert.StartsWith("\"key-minute\";r=0;t=45, \"minute\";r=0;t=45, \"monthly\";r=940;t=3585, \"key-concurrent\";r=", limited.One("RateLimit"));
        Assert.Equal(60, (await Billing(client)).GetProperty("requests").GetProperty("used").GetInt64());

        // Up to the month's 1,000th request, 60 a minute.
        for (var sent = 60; sent < 1000; sent++)
        {
            if (sent % 60 == 0)
            {
                billing.Clock.Advance(TimeSpan.FromMinutes(1));
            }

            var response = await client.GetAsync("/v1/keys");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"request {sent + 1}: {(int)response.StatusCode}");
            if (sent == 999)
            {
                // The 1,000th: the month is now the tightest limit.
                Assert.Equal("1000", response.One("x-ratelimit-limit-requests"));
                Assert.Equal("0", response.One("x-ratelimit-remaining-requests"));
            }
        }

        var now = billing.Clock.GetUtcNow();
        var untilApril = (int)Math.Ceiling((new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero) - now).TotalSeconds);
        var refused = await client.GetAsync("/v1/keys");
        await refused.AssertError(HttpStatusCode.TooManyRequests, "quota_exceeded");
        Assert.Equal(untilApril.ToString(), refused.One("Retry-After"));
        Assert.Equal("1000", refused.One("x-ratelimit-limit-requests"));
        Assert.Equal("0", refused.One("x-ratelimit-remaining-requests"));
        Assert.Equal($"{untilApril / 60}m{untilApril % 60}s", refused.One("x-ratelimit-reset-requests"));
        Assert.Contains($"\"monthly\";r=0;t={untilApril}", refused.One("RateLimit"));
        Assert.Equal("40000", refused.One("x-ratelimit-limit-tokens"));

        var account = await Billing(client);
        Assert.Equal(1000, account.GetProperty("requests").GetProperty("used").GetInt64());
        Assert.Equal(0, account.GetProperty("requests").GetProperty("remaining").GetInt64());

        // Midnight UTC: April has its own 1,000.
        billing.Clock.Advance(TimeSpan.FromSeconds(untilApril));
        var april = await client.GetAsync("/v1/keys");
        Assert.Equal(HttpStatusCode.OK, april.StatusCode);
        Assert.Contains("\"monthly\";r=999;t=2592000", april.One("RateLimit"));
        Assert.Equal(1, (await Billing(client)).GetProperty("requests").GetProperty("used").GetInt64());
    }

    [Fact]
    public async Task The_fourth_sandbox_fine_tune_of_the_month_is_refused_and_refused_or_invalid_ones_do_not_count()
    {
        var (_, client) = await billing.WorkspaceAsync("sandbox-fine-tunes");
        var file = await UploadAsync(client);

        // A job that is not created (bad input) does not use up the quota.
        await (await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny" })).AssertError(HttpStatusCode.BadRequest);
        for (var i = 0; i < 3; i++)
        {
            await (await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny", dataset = file })).Json(HttpStatusCode.Created);
        }

        var fourth = await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny", dataset = file });
        await fourth.AssertError(HttpStatusCode.TooManyRequests, "quota_exceeded");
        Assert.Equal("3600", fourth.One("Retry-After"));

        var account = await Billing(client);
        Assert.Equal(3, account.GetProperty("fineTunes").GetProperty("used").GetInt64());
        Assert.Equal(0, account.GetProperty("fineTunes").GetProperty("remaining").GetInt64());
        // Listing jobs is still fine; only creating more is refused.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/fine-tune")).StatusCode);

        billing.Clock.Advance(TimeSpan.FromHours(1));
        await (await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny", dataset = file })).Json(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Billing_shows_the_plan_and_its_limits_and_is_never_itself_limited()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("sandbox-view");
        var account = await Billing(client);
        Assert.Equal(workspaceId, account.GetProperty("workspaceId").GetString());
        Assert.Equal("sandbox", account.GetProperty("plan").GetString());
        Assert.Equal(0m, account.GetProperty("balanceUsd").GetDecimal());
        Assert.Equal(1000, account.GetProperty("requests").GetProperty("limit").GetInt64());
        Assert.Equal(3, account.GetProperty("fineTunes").GetProperty("limit").GetInt64());
        Assert.Equal(60, account.GetProperty("limits").GetProperty("requestsPerMinute").GetInt64());
        Assert.Equal("2026-03-01T00:00:00Z", account.GetProperty("period").GetProperty("start").GetString());
        Assert.Equal("2026-04-01T00:00:00Z", account.GetProperty("period").GetProperty("end").GetString());

        for (var i = 0; i < 70; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/billing")).StatusCode);
        }

        Assert.Equal(0, (await Billing(client)).GetProperty("requests").GetProperty("used").GetInt64());
    }

    internal static async Task<System.Text.Json.JsonElement> Billing(HttpClient client) => await (await client.GetAsync("/v1/billing")).Json();

    internal static async Task<string> UploadAsync(HttpClient client)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("fine-tune"), "purpose");
        var lines = string.Join("\n", Enumerable.Range(0, 8).Select(i => $$"""{"prompt":"What is {{i}} plus one?","completion":"{{i + 1}}"}"""));
        form.Add(new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(lines)), "file", "data.jsonl");
        var file = await (await client.PostAsync("/v1/files", form)).Json();
        return file.GetProperty("id").GetString()!;
    }
}
