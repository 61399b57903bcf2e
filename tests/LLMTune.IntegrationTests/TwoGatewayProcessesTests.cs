using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using LLMTune.Testing;

namespace LLMTune.IntegrationTests;

/// <summary>
/// Billing admission across gateway replicas: two <c>llmtune serve --target gateway</c> processes on one broker and one
/// MongoDB, the store replicas share in production. Needs <c>LLMTUNE_TEST_MONGODB</c> (a MongoDB connection string);
/// skips without it. The embedded LiteDB store is single-process by design (one file, one in-process write lock), so
/// two processes on one LiteDB file would test a configuration nothing deploys.
/// </summary>
public sealed class TwoGatewayProcessesTests(RabbitMqBroker broker) : IClassFixture<RabbitMqBroker>
{
    private const string OperatorToken = "operator-token-for-two-gateways-0123";

    [Fact]
    public async Task Two_hundred_concurrent_requests_over_two_gateway_processes_with_fifty_left_admit_at_most_fifty()
    {
        var mongo = Environment.GetEnvironmentVariable("LLMTUNE_TEST_MONGODB");
        Assert.SkipWhen(string.IsNullOrEmpty(mongo),
            "LLMTUNE_TEST_MONGODB is unset: this test needs a MongoDB shared by two gateway processes (LiteDB is single-process).");
        var rabbit = broker.RequireUrl();
        var database = $"llmtune_two_gateways_{Guid.NewGuid():N}";
        string[] settings =
        [
            "--target", "gateway",
            "--Storage:Provider=MongoDb", $"--ConnectionStrings:MongoDb={mongo}", $"--Storage:MongoDatabase={database}",
            "--Bus:Transport=RabbitMq", $"--ConnectionStrings:RabbitMq={rabbit}",
            "--Internal:Secret=internal-secret-for-tests-0123456789", $"--Admin:OperatorToken={OperatorToken}",
            "--Billing:Plans:Sandbox:MonthlyRequests=60", "--Billing:Plans:Sandbox:RequestsPerMinute=100000",
            "--Billing:Plans:Sandbox:RequestsPerMinutePerKey=100000", "--Billing:Plans:Sandbox:ConcurrentRequests=100000",
            "--Billing:Plans:Sandbox:ConcurrentRequestsPerKey=100000",
        ];
        await using var first = await HostProcess.StartAsync(Directory.CreateTempSubdirectory("llmtune-gw1-").FullName, settings);
        await using var second = await HostProcess.StartAsync(Directory.CreateTempSubdirectory("llmtune-gw2-").FullName, settings);

        using var admin = new HttpClient { BaseAddress = first.Address };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = "two-processes" })).Json(HttpStatusCode.Created);
        var key = created.GetProperty("apiKey").GetProperty("key").GetString()!;
        HttpClient Client(Uri address)
        {
            var client = new HttpClient { BaseAddress = address };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return client;
        }

        using var viaFirst = Client(first.Address);
        using var viaSecond = Client(second.Address);
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

        // The conditional update in MongoDB is exact, so this is 50; the contract is that it is never more.
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), 1, 50);
        Assert.Equal(200, statuses.Count(s => s is HttpStatusCode.OK or HttpStatusCode.TooManyRequests));
    }
}
