using System.Diagnostics;
using System.Net;
using LLMTune.Testing;
using static LLMTune.IntegrationTests.Faults.FaultRig;

namespace LLMTune.IntegrationTests.Faults;

/// <summary>
/// The store's file made immutable under a running process (<c>chattr +i</c>: refused even to root and to the file
/// handle the process already holds, unlike chmod): requests answer 503 <c>store_unavailable</c> in the error shape
/// (an authenticated request records something, so reads are refused too), and once the file is writable again only
/// what was answered 201 is there.
/// </summary>
public sealed class ReadOnlyStoreTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Writes_to_a_read_only_store_answer_503_and_leave_nothing_half_written()
    {
        var data = Directory.CreateTempSubdirectory("llmtune-fault-readonly-").FullName;
        var storeDir = Directory.CreateDirectory(Path.Combine(data, "store")).FullName;
        var args = Args(data, "amqp://unused/", Path.Combine("store", "llmtune.db"))
            .Select(a => a.StartsWith("--Bus:Transport=", StringComparison.Ordinal) ? "--Bus:Transport=InMemory" : a).ToArray();
        await using var host = await HostProcess.StartAsync(data, args);
        await Eventually.True(() => ReadyAsync(host.Address), TimeSpan.FromSeconds(90), "the host");
        using var client = Client(host.Address, InitialKey(data));
        await using var receiver = new WebhookReceiver();
        var before = await EndpointCountAsync(client);
        Assert.All(await ChatManyAsync(client, 3, parallel: 1), o => Assert.True(o.Ok, $"{o.Status} {o.Code}"));
        await Eventually.True(async () => await BilledRequestsAsync(client) == 3, TimeSpan.FromSeconds(30), "the first requests billed");

        var locked = Directory.EnumerateFiles(storeDir).Append(storeDir).ToList();
        if (!await ChattrAsync("+i", locked))
        {
            Assert.Skip("chattr +i is not available here (not root, or the file system has no immutable flag).");
        }

        List<(string What, HttpResponseMessage Response)> refused;
        try
        {
            refused =
            [
                ("webhook endpoint", await CreateWebhookEndpointAsync(client, receiver.Url)),
                ("batch", await CreateBatchAsync(client, 2)),
            ];
            foreach (var (what, response) in refused)
            {
                // The batch's model check may fail first (its consumer cannot record its inbox entry): any 503 will do.
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                var error = (await response.Json()).GetProperty("error");
                Assert.NotNull(response.Headers.RetryAfter?.Delta);
                Log($"read-only store: creating a {what} got 503 {error.GetProperty("code").GetString()} (Retry-After {response.Headers.RetryAfter?.Delta?.TotalSeconds} s)");
            }

            // A chat answer cannot be metered now: refused rather than given away unbilled.
            var chat = await ChatAsync(client, 99);
            Log($"read-only store: a chat completion got {chat.Status} {chat.Code} (Retry-After {chat.RetryAfter?.TotalSeconds} s)");
            Assert.Equal(503, chat.Status);
            Assert.NotNull(chat.RetryAfter);
        }
        finally
        {
            await ChattrAsync("-i", locked);
        }

        var created = await CreateWebhookEndpointAsync(client, receiver.Url);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var batches = (await (await client.GetAsync("/v1/batch")).Json()).GetProperty("data").GetArrayLength();
        var after = await EndpointCountAsync(client);
        var billed = await BilledRequestsAsync(client);
        Log($"writable again: a new endpoint answers 201; endpoints {before} before, {after} after (the refused one is not there), batches {batches} " +
            $"(none half-written), billed requests {billed} (the refused chat is not)");
        Assert.Equal(3, billed);
        Assert.Equal(before + 1, after);
        Assert.Equal(0, batches);
    }

    private static async Task<int> EndpointCountAsync(HttpClient client) =>
        (await (await client.GetAsync("/v1/webhooks/endpoints")).Json()).GetProperty("data").GetArrayLength();

    private static async Task<bool> ChattrAsync(string flag, IEnumerable<string> paths)
    {
        try
        {
            using var chattr = Process.Start(new ProcessStartInfo("chattr", [flag, .. paths]) { RedirectStandardError = true, UseShellExecute = false })!;
            await chattr.WaitForExitAsync();
            return chattr.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no chattr
        }
    }
}
