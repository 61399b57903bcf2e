using LLMTune.Batch.Tests.Support;
using LLMTune.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Batch.Tests;

/// <summary>A host stopped mid-batch; the next start on the same store finishes the batch with every item exactly once.</summary>
public sealed class RestartTests
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Inference:BatchConcurrency"] = "1",
        ["Batch:MaxInFlightPerBatch"] = "3",
        ["Batch:ResultTimeout"] = "00:10:00",
    };

    [Fact]
    public async Task A_restarted_host_re_requests_the_items_whose_result_never_came()
    {
        const int items = 10;
        var data = Directory.CreateTempSubdirectory("llmtune-batch-restart-").FullName;
        string batchId;
        IReadOnlyList<InferenceCompleted> meteredBefore;
        var first = await BatchHost.StartAsync(Settings, data);
        {
            using var client = first.Client();
            batchId = (await client.SubmitAsync(new { modelId = BatchHost.Slow, requests = BatchApi.Requests(items, maxTokens: 48) })).GetProperty("batchId").GetString()!;
            await client.WaitForAsync(batchId, b => b.Count("succeeded") >= 1, "a first result");
            // Stopped here: the requested items in flight on the in-memory bus are lost with the process.
            await first.DisposeAsync();
            meteredBefore = first.Published.Of<InferenceCompleted>().Where(e => e.BatchId == batchId).ToList();
            Assert.Empty(first.Published.Of<BatchCompleted>());
        }

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var second = await BatchHost.StartAsync(Settings, data, b => b.Services.AddSingleton<TimeProvider>(time));
        using var again = second.Client();

        // Requests still in the outbox go out from the new process at once; an item lost mid-run on the in-memory bus is
        // re-requested once its result timeout has passed.
        var resumed = await again.GetBatchAsync(batchId);
        var finishedBefore = resumed.GetProperty("results").EnumerateArray()
            .Where(r => r.TryGetProperty("text", out var text) && text.ValueKind == System.Text.Json.JsonValueKind.String)
            .ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetRawText());
        Assert.NotEmpty(finishedBefore);

        time.Advance(TimeSpan.FromMinutes(11));
        var done = await again.WaitForEndAsync(batchId, TimeSpan.FromMinutes(2));
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal((items, items, 0), (done.Count("total"), done.Count("succeeded"), done.Count("pending")));
        var results = done.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(1, items).Select(i => $"req-{i}"), results.Select(r => r.GetProperty("id").GetString()));
        Assert.All(results, r => Assert.Equal(48, r.GetProperty("tokens").GetInt32()));
        foreach (var (id, before) in finishedBefore)
        {
            Assert.Equal(before, results.Single(r => r.GetProperty("id").GetString() == id).GetRawText());
        }

        // Every item ran to completion once across both processes (a run cut short by the stop is metered as cancelled);
        // usage recorded by the first process but still in its outbox is published by the second.
        await Eventually.True(() => second.Published.Of<BatchCompleted>().Any(e => e.BatchId == batchId), what: "BatchCompleted");
        var metered = meteredBefore.Concat(second.Published.Of<InferenceCompleted>().Where(e => e.BatchId == batchId)).ToList();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"usage published: {meteredBefore.Count} by the first process, {metered.Count - meteredBefore.Count} by the second; " +
            $"completed runs {metered.Count(e => e.FinishReason != "cancelled")}/{items}, cut short {metered.Count(e => e.FinishReason == "cancelled")}");
        Assert.Equal(items, metered.Count(e => e.FinishReason != "cancelled"));
        Assert.Equal(metered.Count, metered.Select(e => e.CorrelationId + e.Timestamp.ToString("O")).Distinct().Count());
        Assert.Single(second.Published.Of<BatchCompleted>(), e => e.BatchId == batchId);
    }
}
