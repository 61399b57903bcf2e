using System.Net;

namespace LLMTune.Billing.Tests;

/// <summary>Admission reserves before it runs: concurrent requests never take more than what is left.</summary>
public sealed class ConcurrencyTests
{
    [Fact]
    public async Task Two_hundred_concurrent_requests_with_fifty_left_admit_exactly_fifty()
    {
        await using var billing = await BillingHost.StartAsync(new DateTimeOffset(2026, 6, 1, 8, 0, 0, TimeSpan.Zero), new Dictionary<string, string?>
        {
            ["Billing:Plans:Sandbox:MonthlyRequests"] = "60",
            ["Billing:Plans:Sandbox:RequestsPerMinute"] = "100000",
            ["Billing:Plans:Sandbox:RequestsPerMinutePerKey"] = "100000",
        });
        var (_, client) = await billing.WorkspaceAsync("sandbox-race");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/keys")).StatusCode);
        }

        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, 200).Select(async _ =>
        {
            await start.WaitAsync();
            using var response = await client.GetAsync("/v1/keys");
            return response.StatusCode;
        }).ToList();
        start.Release(200);
        var statuses = await Task.WhenAll(requests);

        Assert.Equal(50, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(150, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        var account = await QuotaAndRateLimitTests.Billing(client);
        Assert.Equal(60, account.GetProperty("requests").GetProperty("used").GetInt64());
    }
}
