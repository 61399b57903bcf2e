using System.Net;
using LLMTune.Batch.Tests.Support;
using LLMTune.Contracts;

namespace LLMTune.Batch.Tests;

/// <summary>Batches on the slow model, one item at a time: results appear while the batch runs, and cancel keeps them.</summary>
public sealed class RunningBatchTests : IAsyncLifetime
{
    private BatchHost _host = null!;

    public async ValueTask InitializeAsync() => _host = await BatchHost.StartAsync(new Dictionary<string, string?>
    {
        ["Inference:BatchConcurrency"] = "1",
        ["Batch:MaxInFlightPerBatch"] = "2",
    });

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task Results_appear_while_running_and_cancel_keeps_finished_items()
    {
        using var client = _host.Client();
        var accepted = await client.SubmitAsync(new { modelId = BatchHost.Slow, requests = BatchApi.Requests(12, maxTokens: 48) });
        var batchId = accepted.GetProperty("batchId").GetString()!;

        var running = await client.WaitForAsync(batchId, b => b.Count("succeeded") >= 1, "a first result");
        Assert.Equal("processing", running.GetProperty("status").GetString());
        Assert.True(running.Count("pending") > 0, running.GetRawText());
        Assert.InRange(running.GetProperty("progress").GetDouble(), 0.1, 99.9);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, JsonValueKindOf(running, "completedAt"));
        var early = running.GetProperty("results").EnumerateArray().First();
        Assert.StartsWith("req-", early.GetProperty("id").GetString());
        Assert.Equal(48, early.GetProperty("tokens").GetInt32());

        var cancelled = await (await client.PostAsync($"/v1/batch/{batchId}/cancel", null)).Json();
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        var finished = cancelled.Count("succeeded");
        Assert.True(finished >= 1);
        Assert.True(cancelled.Count("cancelled") >= 1);
        Assert.Equal(12, finished + cancelled.Count("failed") + cancelled.Count("cancelled"));
        Assert.Equal(0, cancelled.Count("pending"));
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, JsonValueKindOf(cancelled, "cancelledAt"));
        Assert.Contains(cancelled.GetProperty("results").EnumerateArray(), r => r.GetProperty("id").GetString() == "req-1");

        // Items already requested still report; their results change nothing. The rest were never requested.
        await Eventually.True(
            () => _host.Consumed.Of<RunBatchItem>().Count(m => m.BatchId == batchId) == _host.Published.Of<RunBatchItem>().Count(m => m.BatchId == batchId)
                  && _host.Consumed.Of<BatchItemCompleted>().Count(m => m.BatchId == batchId) == _host.Published.Of<BatchItemCompleted>().Count(m => m.BatchId == batchId),
            TimeSpan.FromSeconds(60), "the requested items to report");
        Assert.True(_host.Published.Of<RunBatchItem>().Count(m => m.BatchId == batchId) < 12);
        var later = await client.GetBatchAsync(batchId);
        Assert.Equal("cancelled", later.GetProperty("status").GetString());
        Assert.Equal(cancelled.GetProperty("counts").GetRawText(), later.GetProperty("counts").GetRawText());
        Assert.DoesNotContain(_host.Published.Of<BatchCompleted>(), e => e.BatchId == batchId);

        // Cancelling again answers the same; a finished batch cannot be cancelled.
        Assert.Equal("cancelled", (await (await client.PostAsync($"/v1/batch/{batchId}/cancel", null)).Json()).GetProperty("status").GetString());
        var quick = (await client.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(1) })).GetProperty("batchId").GetString()!;
        await client.WaitForEndAsync(quick);
        await (await client.PostAsync($"/v1/batch/{quick}/cancel", null)).AssertError(HttpStatusCode.Conflict, "batch_finished");
    }

    [Fact]
    public async Task Cancel_stops_the_items_being_generated()
    {
        // The slow model never stops early: uncancelled, each item would generate all of its 900 tokens.
        using var client = _host.Client();
        var accepted = await client.SubmitAsync(new { modelId = BatchHost.Slow, requests = BatchApi.Requests(2, "long", maxTokens: 900) });
        var batchId = accepted.GetProperty("batchId").GetString()!;
        await Eventually.True(() => _host.Published.Of<RunBatchItem>().Any(m => m.BatchId == batchId), TimeSpan.FromSeconds(30), "an item to be requested");
        await client.WaitForAsync(batchId, b => b.GetProperty("status").GetString() == "processing", "the batch to run");
        var cancelledAt = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal("cancelled", (await (await client.PostAsync($"/v1/batch/{batchId}/cancel", null)).Json()).GetProperty("status").GetString());

        // Every requested item reports that it was stopped by the cancel, none ran to its end.
        var requested = _host.Published.Of<RunBatchItem>().Where(m => m.BatchId == batchId).Select(m => m.ItemKey).Distinct().ToList();
        await Eventually.True(
            () => requested.All(key => _host.Published.Of<BatchItemCompleted>().Any(m => m.ItemKey == key)),
            TimeSpan.FromSeconds(60), "the requested items to stop");
        var outcomes = _host.Published.Of<BatchItemCompleted>().Where(m => m.BatchId == batchId).ToList();
        Assert.All(outcomes, o => Assert.Equal("batch_cancelled", o.ErrorCode));
        var metered = _host.Published.Of<InferenceCompleted>().Where(e => e.BatchId == batchId).ToList();
        Assert.All(metered, e => Assert.InRange(e.CompletionTokens, 0, 899));
        TestContext.Current.SendDiagnosticMessage(
            $"cancel stopped {outcomes.Count} item(s) in {cancelledAt.ElapsedMilliseconds} ms; metered tokens: {string.Join(", ", metered.Select(e => e.CompletionTokens))}");
    }

    private static System.Text.Json.JsonValueKind JsonValueKindOf(System.Text.Json.JsonElement element, string name) => element.GetProperty(name).ValueKind;
}
