using System.Net;
using System.Net.Http.Json;
using LLMTune.Contracts;
using LLMTune.Inference.Tests.Support;

namespace LLMTune.Inference.Tests;

/// <summary>Streams arrive while generating, a client that leaves stops the work, and every request is metered once.</summary>
public sealed class StreamingAndUsageTests(InferenceHost fixture)
{
    [Fact]
    public async Task First_delta_arrives_while_generating_and_a_disconnect_frees_the_slot_and_is_metered_once()
    {
        const int maxTokens = 1800;
        var requestId = NewRequestId();
        var client = fixture.Client();
        var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/models/{InferenceHost.Stream}/inference")
        {
            Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens, stream = true }),
        };
        request.Headers.Add("x-request-id", requestId);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var events = response.ReadEventsAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("delta", events.Current.Name);

        // Hang up mid-stream.
        await events.DisposeAsync();
        response.Dispose();
        client.Dispose();

        await Eventually.True(() => fixture.Stats(InferenceHost.Stream) is { ActiveSequences: 0, QueuedRequests: 0 }, what: "the engine to free the slot");
        var usage = await WaitForUsageAsync(requestId);

        var completed = Assert.Single(usage);
        // Cut short: had the generation finished before the first delta reached us, it would say "length".
        Assert.Equal("cancelled", completed.FinishReason);
        Assert.True(completed.Streamed);
        Assert.InRange(completed.CompletionTokens, 1, maxTokens - 1);
        Assert.Equal(InferenceHost.Stream, completed.Model);

        // The engine really stopped: no tokens are produced for this model any more.
        var generated = fixture.Stats(InferenceHost.Stream).TokensGenerated;
        using var probe = fixture.Client();
        (await probe.GetAsync("/v1/models")).EnsureSuccessStatusCode();
        Assert.Equal(generated, fixture.Stats(InferenceHost.Stream).TokensGenerated);
        Assert.Single(UsageFor(requestId));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Each_request_publishes_one_usage_event_with_its_workspace_key_model_tokens_and_request_id(bool stream)
    {
        var requestId = NewRequestId();
        using var client = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model = InferenceHost.Small,
                messages = new[] { new { role = "user", content = "Count to three." } },
                max_tokens = 7,
                temperature = 0,
                stream,
                stream_options = stream ? new { include_usage = true } : null,
            }),
        };
        request.Headers.Add("x-request-id", requestId);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(requestId, response.Headers.GetValues("x-request-id").Single());

        var usage = await WaitForUsageAsync(requestId);
        var completed = Assert.Single(usage);
        Assert.Equal(stream, completed.Streamed);
        Assert.Equal(InferenceHost.Small, completed.Model);
        Assert.StartsWith("ws_", completed.WorkspaceId);
        Assert.StartsWith("key_", completed.KeyId);
        Assert.InRange(completed.CompletionTokens, 1, 7);
        Assert.True(completed.PromptTokens > 0);
        Assert.True(completed.LatencyMs >= 0);

        // The metered tokens are the ones the client was told about.
        var reported = stream
            ? System.Text.Json.JsonDocument.Parse(body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).Last()[6..]).RootElement
            : System.Text.Json.JsonDocument.Parse(body).RootElement;
        Assert.Equal(completed.CompletionTokens, reported.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(completed.PromptTokens, reported.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        if (stream)
        {
            Assert.EndsWith("data: [DONE]", body.TrimEnd());
            Assert.Empty(reported.GetProperty("choices").EnumerateArray());
        }

        // A request rejected before any work is not metered.
        var rejectedId = NewRequestId();
        using var rejected = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "missing", messages = new[] { new { role = "user", content = "x" } } }),
        };
        rejected.Headers.Add("x-request-id", rejectedId);
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(rejected)).StatusCode);
        Assert.Single(UsageFor(requestId));
        Assert.Empty(UsageFor(rejectedId));
    }

    [Fact]
    public async Task Openai_stream_without_usage_option_has_no_usage_chunk_but_ends_with_done()
    {
        using var client = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = JsonContent.Create(new { model = InferenceHost.Small, prompt = "abc", max_tokens = 4, stream = true }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var data = new List<string>();
        await foreach (var e in response.ReadEventsAsync())
        {
            data.Add(e.Data);
        }

        Assert.Equal("[DONE]", data[^1]);
        var chunks = data.SkipLast(1).Select(d => System.Text.Json.JsonDocument.Parse(d).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.Single(c.GetProperty("choices").EnumerateArray()));
        Assert.Equal("length", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    private IReadOnlyList<InferenceCompleted> UsageFor(string requestId) =>
        fixture.Events.Of<InferenceCompleted>().Where(e => e.CorrelationId == requestId).ToList();

    private async Task<IReadOnlyList<InferenceCompleted>> WaitForUsageAsync(string requestId)
    {
        await Eventually.True(() => UsageFor(requestId).Count > 0, what: $"the usage event of {requestId}");
        return UsageFor(requestId);
    }

    private static string NewRequestId() => "req_test_" + Guid.NewGuid().ToString("N");
}
