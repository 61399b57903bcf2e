using System.Net;
using System.Net.Http.Json;
using System.Text;
using LLMTune.Contracts;
using LLMTune.Inference.Tests.Support;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests;

/// <summary>
/// Upstream models: a second real host serves <c>test/small</c> over its OpenAI-compatible API; small Kestrel servers
/// in front of it inject failures and delays. The host under test knows it as <c>upstream/*</c>.
/// </summary>
public sealed class UpstreamTests : IAsyncLifetime
{
    private TestHost _upstream = null!;
    private TestHost _host = null!;
    private FaultyUpstream _passThrough = null!;
    private FaultyUpstream _breaker = null!;
    private FaultyUpstream _slow = null!;
    private readonly PublishedEvents _upstreamEvents = new();
    private readonly PublishedEvents _events = new();

    public async ValueTask InitializeAsync()
    {
        _upstream = await TestHost.StartAsync(settings: InferenceHost.LocalModelSettings());
        _upstream.Services.GetRequiredService<IBus>().ConnectPublishObserver(_upstreamEvents);
        _passThrough = await FaultyUpstream.StartAsync(_upstream.Address);
        _breaker = await FaultyUpstream.StartAsync(_upstream.Address);
        _slow = await FaultyUpstream.StartAsync(_upstream.Address);

        var settings = InferenceHost.LocalModelSettings();
        void Upstream(string id, Uri baseUrl, params (string Key, string Value)[] extra)
        {
            settings[$"Inference:Models:{id}:Upstream:BaseUrl"] = baseUrl.ToString();
            settings[$"Inference:Models:{id}:Upstream:ApiKey"] = _upstream.InitialKey;
            settings[$"Inference:Models:{id}:Upstream:Model"] = InferenceHost.Small;
            settings[$"Inference:Models:{id}:Upstream:RetryDelay"] = "00:00:00.020";
            foreach (var (key, value) in extra)
            {
                settings[$"Inference:Models:{id}:{key}"] = value;
            }
        }

        Upstream("upstream/small", _passThrough.BaseUrl);
        Upstream("upstream/long", _passThrough.BaseUrl, ("Upstream:Model", InferenceHost.Stream)); // 2048-token context
        Upstream("upstream/breaker", _breaker.BaseUrl,
            ("Upstream:MaxRetries", "1"),
            ("Upstream:CircuitMinimumThroughput", "4"),
            ("Upstream:CircuitFailureRatio", "0.5"),
            ("Upstream:CircuitBreakDuration", "00:00:01"));
        Upstream("upstream/slow", _slow.BaseUrl, ("Upstream:AttemptTimeout", "00:00:00.500"), ("Upstream:MaxRetries", "0"));
        var closed = FaultyUpstream.ClosedPortUrl();
        Upstream("upstream/down", closed, ("Fallbacks:0", InferenceHost.Small));
        Upstream("upstream/down-alone", closed, ("Upstream:MaxRetries", "1"));
        _host = await TestHost.StartAsync(settings: settings);
        _host.Services.GetRequiredService<IBus>().ConnectPublishObserver(_events);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _passThrough.DisposeAsync();
        await _breaker.DisposeAsync();
        await _slow.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Fact]
    public async Task Plain_and_streamed_calls_pass_through_to_the_upstream()
    {
        using var client = _host.Client(_host.InitialKey);
        using var direct = _upstream.Client(_upstream.InitialKey);
        var messages = new[] { new { role = "user", content = "Tell me about llamas." } };

        var expected = await (await direct.PostAsJsonAsync("/v1/chat/completions", new { model = InferenceHost.Small, messages, max_tokens = 8, temperature = 0 })).Json();
        var viaUpstream = await (await client.PostAsJsonAsync("/v1/chat/completions", new { model = "upstream/small", messages, max_tokens = 8, temperature = 0 })).Json();
        Assert.Equal("upstream/small", viaUpstream.GetProperty("model").GetString());
        Assert.Equal(Text(expected), Text(viaUpstream));
        Assert.Equal(expected.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), viaUpstream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(expected.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), viaUpstream.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        // Streamed: the chunks re-assemble the same text and the usage chunk carries the upstream's counts.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "upstream/small", messages, max_tokens = 8, temperature = 0, stream = true, stream_options = new { include_usage = true } }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var text = new StringBuilder();
        var usageChunks = 0;
        await foreach (var e in response.ReadEventsAsync())
        {
            if (e.Data == "[DONE]")
            {
                break;
            }

            var chunk = e.Json;
            if (chunk.GetProperty("choices").GetArrayLength() == 0)
            {
                usageChunks++;
                Assert.Equal(expected.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), chunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            }
            else if (chunk.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var content))
            {
                text.Append(content.GetString());
            }
        }

        Assert.Equal(1, usageChunks);
        Assert.Equal(Text(expected), text.ToString());

        // Raw completions go to the upstream's /completions, and the native endpoint works on upstream models too.
        var completion = await (await client.PostAsJsonAsync("/v1/completions", new { model = "upstream/small", prompt = "abc", max_tokens = 5, temperature = 0 })).Json();
        var directCompletion = await (await direct.PostAsJsonAsync("/v1/completions", new { model = InferenceHost.Small, prompt = "abc", max_tokens = 5, temperature = 0 })).Json();
        Assert.Equal(directCompletion.GetProperty("choices")[0].GetProperty("text").GetString(), completion.GetProperty("choices")[0].GetProperty("text").GetString());
        var native = await (await client.PostAsJsonAsync("/v1/models/upstream/small/inference", new { prompt = "Tell me about llamas.", temperature = 0, maxTokens = 8 })).Json();
        Assert.Equal(Text(expected), native.GetProperty("text").GetString());
        Assert.Equal("upstream/small", native.GetProperty("model").GetString());
    }

    [Fact]
    public async Task A_client_leaving_a_streamed_upstream_call_stops_the_upstream_generation()
    {
        var requestId = "req_upstream_" + Guid.NewGuid().ToString("N");
        var client = _host.Client(_host.InitialKey);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/upstream/long/inference")
        {
            Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens = 1800, stream = true }),
        };
        request.Headers.Add("x-request-id", requestId);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = response.ReadEventsAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("delta", events.Current.Name);
        await events.DisposeAsync();
        response.Dispose();
        client.Dispose();

        // The upstream (an LLMTune host, which meters by our request id) saw its client leave and stopped too.
        await Eventually.True(() => _upstreamEvents.Of<InferenceCompleted>().Any(e => e.CorrelationId == requestId), what: "the upstream's usage event");
        Assert.Equal("cancelled", Assert.Single(_upstreamEvents.Of<InferenceCompleted>(), e => e.CorrelationId == requestId).FinishReason);
        await Eventually.True(() => _events.Of<InferenceCompleted>().Any(e => e.CorrelationId == requestId), what: "our usage event");
        var ours = Assert.Single(_events.Of<InferenceCompleted>(), e => e.CorrelationId == requestId);
        Assert.Equal("cancelled", ours.FinishReason);
        Assert.Equal("upstream/long", ours.Model);
        Assert.True(ours.Streamed);
        await Eventually.True(() => _upstream.Services.GetRequiredService<Engine.Inference.ModelManager>().Get(InferenceHost.Stream).GetStats().ActiveSequences == 0,
            what: "the upstream's slot to free");
    }

    [Fact]
    public async Task Failures_are_retried_then_the_circuit_opens_and_closes_again_when_the_upstream_recovers()
    {
        using var client = _host.Client(_host.InitialKey);
        var body = new { model = "upstream/breaker", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 };

        // One failure is retried: the client never sees it.
        _breaker.FailNext(1);
        var before = _breaker.Requests;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/chat/completions", body)).StatusCode);
        Assert.Equal(before + 2, _breaker.Requests);

        // A failing upstream: 502s (each after one retry) until the circuit opens, then 503s that never reach it.
        _breaker.FailAll = true;
        HttpResponseMessage? open = null;
        for (var attempt = 0; attempt < 20 && open is null; attempt++)
        {
            var sent = _breaker.Requests;
            var response = await client.PostAsJsonAsync("/v1/chat/completions", body);
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                open = response;
                Assert.Equal(sent, _breaker.Requests);
            }
            else
            {
                await response.AssertError(HttpStatusCode.BadGateway, "upstream_error");
                Assert.InRange(_breaker.Requests - sent, 1, 2);
            }
        }

        Assert.NotNull(open);
        await open!.AssertError(HttpStatusCode.ServiceUnavailable, "upstream_unavailable");
        Assert.NotNull(open.Headers.RetryAfter);

        // The upstream recovers: after the break the circuit lets a probe through and closes.
        _breaker.FailAll = false;
        await Eventually.True(async () => (await client.PostAsJsonAsync("/v1/chat/completions", body)).StatusCode == HttpStatusCode.OK,
            timeout: TimeSpan.FromSeconds(30), what: "the circuit to close");
    }

    [Fact]
    public async Task An_upstream_timeout_answers_504()
    {
        _slow.Delay = TimeSpan.FromSeconds(5);
        using var client = _host.Client(_host.InitialKey);
        var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "upstream/slow", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 });
        await response.AssertError(HttpStatusCode.GatewayTimeout, "upstream_timeout");
        _slow.Delay = TimeSpan.Zero;
    }

    [Fact]
    public async Task An_unreachable_upstream_answers_502_or_falls_back_to_the_next_model()
    {
        using var client = _host.Client(_host.InitialKey);
        var messages = new[] { new { role = "user", content = "hi" } };
        await (await client.PostAsJsonAsync("/v1/chat/completions", new { model = "upstream/down-alone", messages, max_tokens = 2 }))
            .AssertError(HttpStatusCode.BadGateway, "upstream_error");

        var answered = await (await client.PostAsJsonAsync("/v1/chat/completions", new { model = "upstream/down", messages, max_tokens = 2 })).Json();
        Assert.Equal(InferenceHost.Small, answered.GetProperty("model").GetString());
    }

    private static string? Text(System.Text.Json.JsonElement completion) =>
        completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
}
