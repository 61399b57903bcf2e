using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.DependencyInjection;

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
            ["Billing:Plans:Sandbox:ConcurrentRequests"] = "100000",
            ["Billing:Plans:Sandbox:ConcurrentRequestsPerKey"] = "100000",
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

    [Fact]
    public async Task Two_gateway_hosts_sharing_one_store_instance_admit_exactly_fifty_between_them()
    {
        // Two split-mode gateway hosts in this process whose only shared state is one document store object: it shows
        // admission keeps no per-host state. Two processes on one store: tests/LLMTune.IntegrationTests (MongoDB).
        var data = Directory.CreateTempSubdirectory("llmtune-two-gateways-").FullName;
        var settings = new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "LiteDb",
            ["Storage:LiteDbPath"] = Path.Combine(data, "shared.db"),
            ["Bus:Transport"] = "InMemory",
            ["Internal:Secret"] = "internal-secret-for-tests-0123456789",
            ["Admin:OperatorToken"] = BillingHost.OperatorToken,
            ["Billing:Plans:Sandbox:MonthlyRequests"] = "60",
            ["Billing:Plans:Sandbox:RequestsPerMinute"] = "100000",
            ["Billing:Plans:Sandbox:RequestsPerMinutePerKey"] = "100000",
            ["Billing:Plans:Sandbox:ConcurrentRequests"] = "100000",
            ["Billing:Plans:Sandbox:ConcurrentRequestsPerKey"] = "100000",
        };
        await using var first = await TestHost.StartAsync("gateway", settings, dataDirectory: data);
        var store = first.Services.GetRequiredService<IDocumentStore>();
        await using var second = await TestHost.StartAsync("gateway", settings, b => b.Services.AddSingleton(store), dataDirectory: data);
        Assert.Same(store, second.Services.GetRequiredService<IDocumentStore>());

        using var admin = first.Client();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", BillingHost.OperatorToken);
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = "two-gateways" })).Json(HttpStatusCode.Created);
        var key = created.GetProperty("apiKey").GetProperty("key").GetString()!;
        using var viaFirst = first.Client(key);
        using var viaSecond = second.Client(key);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await (i % 2 == 0 ? viaFirst : viaSecond).GetAsync("/v1/keys")).StatusCode);
        }

        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, 200).Select(async i =>
        {
            await start.WaitAsync();
            using var response = await (i % 2 == 0 ? viaFirst : viaSecond).GetAsync("/v1/keys");
            return response.StatusCode;
        }).ToList();
        start.Release(200);
        var statuses = await Task.WhenAll(requests);

        Assert.Equal(50, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(150, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }
}
