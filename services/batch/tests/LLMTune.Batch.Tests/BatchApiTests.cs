using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Batch.Tests.Support;
using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Batch.Tests;

/// <summary>The native batch API on the bundled model: the seed example, validation, isolation, lists, results, repeats.</summary>
public sealed class BatchApiTests(SharedBatchHost fixture) : IClassFixture<SharedBatchHost>
{
    private BatchHost Host => fixture.Host;

    [Fact]
    public async Task Seed_example_is_accepted_runs_every_item_once_and_announces_completion_once()
    {
        using var client = Host.Client();
        var accepted = await client.SubmitAsync(new
        {
            modelId = BatchHost.Tiny,
            requests = new object[]
            {
                new { id = "req-1", prompt = "First prompt", maxTokens = 8, metadata = new { conversationId = "c-1" } },
                new { id = "req-2", prompt = "Second prompt", maxTokens = 8 },
            },
            webhookUrl = "https://app.yourdomain.com/batch-callback",
        });
        var batchId = accepted.GetProperty("batchId").GetString()!;
        Assert.StartsWith("batch_", batchId);
        Assert.Equal("queued", accepted.GetProperty("status").GetString());
        Assert.Equal(2, accepted.GetProperty("summary").GetProperty("total").GetInt32());
        Assert.Equal(2, accepted.GetProperty("summary").GetProperty("accepted").GetInt32());
        Assert.Empty(accepted.GetProperty("rejected").EnumerateArray());

        var batch = await client.WaitForEndAsync(batchId);
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal(BatchHost.Tiny, batch.GetProperty("modelId").GetString());
        Assert.Equal((2, 2, 0, 0), (batch.Count("total"), batch.Count("succeeded"), batch.Count("failed"), batch.Count("pending")));
        Assert.Equal(100, batch.GetProperty("progress").GetDouble());
        foreach (var timestamp in new[] { "createdAt", "startedAt", "completedAt" })
        {
            Assert.EndsWith("Z", batch.GetProperty(timestamp).GetString());
        }

        var results = batch.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["req-1", "req-2"], results.Select(r => r.GetProperty("id").GetString()));
        Assert.All(results, r =>
        {
            Assert.Equal("succeeded", r.GetProperty("status").GetString());
            Assert.False(string.IsNullOrEmpty(r.GetProperty("text").GetString()));
            Assert.InRange(r.GetProperty("tokens").GetInt32(), 1, 8);
            Assert.True(r.GetProperty("latency").GetInt64() >= 0);
            Assert.Equal(JsonValueKind.Null, r.GetProperty("error").ValueKind);
        });
        Assert.Equal("c-1", results[0].GetProperty("metadata").GetProperty("conversationId").GetString());

        // Announced once, with the webhook URL; each item metered once, naming the batch.
        await Eventually.True(() => Host.Published.Of<BatchCompleted>().Any(e => e.BatchId == batchId), what: "BatchCompleted");
        var completed = Assert.Single(Host.Published.Of<BatchCompleted>(), e => e.BatchId == batchId);
        Assert.Equal(("https://app.yourdomain.com/batch-callback", 2, 0), (completed.WebhookUrl, completed.Succeeded, completed.Failed));
        Assert.Equal(2, Host.Published.Of<InferenceCompleted>().Count(e => e.BatchId == batchId));
        Assert.Single(Host.Published.Of<BatchQueued>(), e => e.BatchId == batchId);

        // The same results as JSON lines.
        var jsonl = await client.GetAsync($"/v1/batch/{batchId}/results");
        Assert.Equal(HttpStatusCode.OK, jsonl.StatusCode);
        Assert.Equal("application/jsonl", jsonl.Content.Headers.ContentType?.MediaType);
        var lines = (await jsonl.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["req-1", "req-2"], lines.Select(l => l.GetProperty("id").GetString()));
        Assert.Equal(results.Select(r => r.GetProperty("text").GetString()), lines.Select(l => l.GetProperty("text").GetString()));
    }

    [Fact]
    public async Task Hundred_requests_all_succeed_and_101_are_refused_naming_requests()
    {
        using var client = Host.Client();
        var tooMany = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(101) });
        await tooMany.AssertError(HttpStatusCode.BadRequest, param: "requests");

        var accepted = await client.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(100, maxTokens: 4) });
        Assert.Equal(100, accepted.GetProperty("summary").GetProperty("accepted").GetInt32());
        var batchId = accepted.GetProperty("batchId").GetString()!;
        var batch = await client.WaitForEndAsync(batchId, TimeSpan.FromMinutes(3));
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal(100, batch.Count("succeeded"));
        Assert.Equal(100, batch.GetProperty("results").GetArrayLength());
        Assert.Equal(100, batch.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Distinct().Count());
        await Eventually.True(() => Host.Published.Of<BatchCompleted>().Any(e => e.BatchId == batchId), what: "BatchCompleted");
        Assert.Equal(100, Host.Published.Of<InferenceCompleted>().Count(e => e.BatchId == batchId));
    }

    [Fact]
    public async Task Invalid_requests_are_rejected_one_by_one_and_a_batch_of_none_is_refused()
    {
        using var client = Host.Client();
        var accepted = await client.SubmitAsync(new
        {
            modelId = BatchHost.Tiny,
            requests = new object[]
            {
                new { id = "ok-1", prompt = "Hello", maxTokens = 4 },
                new { id = "ok-1", prompt = "Same id again", maxTokens = 4 },
                new { id = "empty", prompt = "" },
                new { id = "hot", prompt = "Too hot", temperature = 3 },
                new { prompt = "No id" },
            },
        });
        Assert.Equal((5, 1), (accepted.GetProperty("summary").GetProperty("total").GetInt32(), accepted.GetProperty("summary").GetProperty("accepted").GetInt32()));
        var rejected = accepted.GetProperty("rejected").EnumerateArray().ToList();
        Assert.Equal(["ok-1", "empty", "hot", null], rejected.Select(r => r.GetProperty("id").GetString()));
        Assert.Equal(
            ["requests[1].id", "requests[2].prompt", "requests[3].temperature", "requests[4].id"],
            rejected.Select(r => r.GetProperty("error").GetProperty("param").GetString()));
        Assert.Equal("duplicate_id", rejected[0].GetProperty("error").GetProperty("code").GetString());
        Assert.All(rejected, r => Assert.Equal("invalid_request_error", r.GetProperty("error").GetProperty("type").GetString()));
        var batch = await client.WaitForEndAsync(accepted.GetProperty("batchId").GetString()!);
        Assert.Equal(1, batch.Count("total"));

        var none = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = BatchHost.Tiny, requests = new[] { new { id = "x", prompt = "" } } });
        await none.AssertError(HttpStatusCode.BadRequest, "no_valid_requests", "requests");

        var empty = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = BatchHost.Tiny, requests = Array.Empty<object>() });
        await empty.AssertError(HttpStatusCode.BadRequest, param: "requests");

        var noModel = await client.PostAsJsonAsync("/v1/batch/inference", new { requests = BatchApi.Requests(1) });
        await noModel.AssertError(HttpStatusCode.BadRequest, param: "modelId");

        var unknown = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = "nobody/unknown-model", requests = BatchApi.Requests(1) });
        await unknown.AssertError(HttpStatusCode.NotFound, "model_not_found", "modelId");

        var badHook = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(1), webhookUrl = "not a url" });
        await badHook.AssertError(HttpStatusCode.BadRequest, param: "webhookUrl");

        var malformed = await client.PostAsync("/v1/batch/inference", new StringContent("{\"modelId\": ", System.Text.Encoding.UTF8, "application/json"));
        await malformed.AssertError(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Another_workspace_gets_404_and_does_not_see_the_batch_in_its_list()
    {
        using var owner = Host.Client();
        var batchId = (await owner.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(1) })).GetProperty("batchId").GetString()!;
        using var other = Host.Client(await Host.CreateWorkspaceKeyAsync("batch-other"));

        await (await other.GetAsync($"/v1/batch/{batchId}")).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        await (await other.GetAsync($"/v1/batch/{batchId}/results")).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        await (await other.PostAsync($"/v1/batch/{batchId}/cancel", null)).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        await (await owner.GetAsync("/v1/batch/batch_doesnotexist")).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        var list = await (await other.GetAsync("/v1/batch")).Json();
        Assert.Empty(list.GetProperty("data").EnumerateArray());
        await owner.WaitForEndAsync(batchId);
    }

    [Fact]
    public async Task The_list_is_paged_newest_first()
    {
        using var client = Host.Client(await Host.CreateWorkspaceKeyAsync("batch-list"));
        var first = (await client.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(1) })).GetProperty("batchId").GetString()!;
        var second = (await client.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(1) })).GetProperty("batchId").GetString()!;

        var page1 = await (await client.GetAsync("/v1/batch?limit=1")).Json();
        Assert.True(page1.GetProperty("hasMore").GetBoolean());
        Assert.Equal(second, Assert.Single(page1.GetProperty("data").EnumerateArray()).GetProperty("batchId").GetString());
        var cursor = page1.GetProperty("nextCursor").GetString()!;
        var page2 = await (await client.GetAsync($"/v1/batch?limit=1&cursor={Uri.EscapeDataString(cursor)}")).Json();
        Assert.False(page2.GetProperty("hasMore").GetBoolean());
        var entry = Assert.Single(page2.GetProperty("data").EnumerateArray());
        Assert.Equal(first, entry.GetProperty("batchId").GetString());
        Assert.False(entry.TryGetProperty("results", out _));
        await (await client.GetAsync("/v1/batch?limit=0")).AssertError(HttpStatusCode.BadRequest, param: "limit");
        await client.WaitForEndAsync(first);
        await client.WaitForEndAsync(second);
    }

    [Fact]
    public async Task One_failing_item_fails_alone_with_the_error_shape()
    {
        using var client = Host.Client();
        var longPrompt = string.Join(' ', Enumerable.Repeat("far too long for a sixty-four token context", 20));
        var batchId = (await client.SubmitAsync(new
        {
            modelId = BatchHost.Short,
            requests = new object[] { new { id = "fits", prompt = "Hi", maxTokens = 4 }, new { id = "too-long", prompt = longPrompt } },
        })).GetProperty("batchId").GetString()!;

        var batch = await client.WaitForEndAsync(batchId);
        Assert.Equal("completed_with_errors", batch.GetProperty("status").GetString());
        Assert.Equal((1, 1), (batch.Count("succeeded"), batch.Count("failed")));
        var failed = batch.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("id").GetString() == "too-long");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        var error = failed.GetProperty("error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        await Eventually.True(() => Host.Published.Of<BatchCompleted>().Any(e => e.BatchId == batchId), what: "BatchCompleted");
        var completed = Host.Published.Of<BatchCompleted>().Single(e => e.BatchId == batchId);
        Assert.Equal((1, 1), (completed.Succeeded, completed.Failed));
    }

    [Fact]
    public async Task Redelivering_every_message_once_more_changes_nothing()
    {
        using var client = Host.Client();
        var batchId = (await client.SubmitAsync(new { modelId = BatchHost.Tiny, requests = BatchApi.Requests(3) })).GetProperty("batchId").GetString()!;
        var before = await client.WaitForEndAsync(batchId);
        await Eventually.True(() => Host.Published.Of<BatchCompleted>().Any(e => e.BatchId == batchId), what: "BatchCompleted");

        var requests = Host.Published.Of<RunBatchItem>().Where(m => m.BatchId == batchId).ToList();
        var results = Host.Published.Of<BatchItemCompleted>().Where(m => m.BatchId == batchId).ToList();
        Assert.Equal(3, requests.Count);
        Assert.Equal(3, results.Count);
        var consumedBefore = (Host.Consumed.Of<RunBatchItem>().Count, Host.Consumed.Of<BatchItemCompleted>().Count);

        var bus = Host.Service<IBus>();
        foreach (var message in requests)
        {
            await bus.Publish(message);
        }

        foreach (var message in results)
        {
            await bus.Publish(message);
        }

        // Each repeated request republishes its stored result (3 more), and every result is consumed again.
        await Eventually.True(
            () => Host.Consumed.Of<RunBatchItem>().Count >= consumedBefore.Item1 + 3 && Host.Consumed.Of<BatchItemCompleted>().Count >= consumedBefore.Item2 + 6,
            what: "the repeats to be consumed");
        var after = await client.GetBatchAsync(batchId);
        Assert.Equal(before.GetProperty("results").GetRawText(), after.GetProperty("results").GetRawText());
        Assert.Equal(before.GetProperty("counts").GetRawText(), after.GetProperty("counts").GetRawText());
        Assert.Equal(before.GetProperty("completedAt").GetString(), after.GetProperty("completedAt").GetString());
        Assert.Equal(3, Host.Published.Of<InferenceCompleted>().Count(e => e.BatchId == batchId));
        Assert.Single(Host.Published.Of<BatchCompleted>(), e => e.BatchId == batchId);
    }
}
