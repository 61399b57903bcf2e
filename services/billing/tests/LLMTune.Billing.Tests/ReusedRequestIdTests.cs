using System.Net;
using System.Net.Http.Json;

namespace LLMTune.Billing.Tests;

/// <summary>
/// The client chooses <c>x-request-id</c>, so it cannot be what a charge is idempotent by: requests that reuse one id
/// are each metered and charged (the id is still echoed for the client's own correlation).
/// </summary>
public sealed class ReusedRequestIdTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 6, 3, 9, 0, 0, TimeSpan.Zero);
    private BillingHost billing = null!;

    public async ValueTask InitializeAsync() => billing = await BillingHost.StartAsync(Start);

    public ValueTask DisposeAsync() => billing.DisposeAsync();

    [Fact]
    public async Task Requests_reusing_one_x_request_id_are_each_metered_and_charged()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("reused-request-id", "growth");
        await billing.TopUpAsync(workspaceId, 1m, "start");
        const string reused = "client-chosen-id-0001";

        foreach (var stream in new[] { false, false, true, true })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/llmtune/tiny/inference")
            {
                Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens = 8, stream }),
            };
            request.Headers.Add("x-request-id", reused);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(reused, response.One("x-request-id"));
        }

        var usage = await Eventually.Get(
            async () => await (await client.GetAsync("/v1/usage?from=2026-06-01&to=2026-06-30&groupBy=day")).Json(),
            u => u.GetProperty("total").GetProperty("requests").GetInt64() >= 4, what: "four charges");
        Assert.Equal(4, usage.GetProperty("total").GetProperty("requests").GetInt64());
        Assert.Equal(0.004m, usage.GetProperty("total").GetProperty("costUsd").GetDecimal());
        Assert.Equal(0.996m, (await QuotaAndRateLimitTests.Billing(client)).GetProperty("balanceUsd").GetDecimal());
    }
}
