using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Inference.Tests.Support;

namespace LLMTune.Inference.Tests;

public sealed class NativeInferenceTests(InferenceHost fixture)
{
    /// <summary>The seed's curl example with the model id changed to llmtune/tiny, through the gateway's key auth.</summary>
    [Fact]
    public async Task Seed_curl_example_answers_every_field_of_the_seed_response()
    {
        using var client = fixture.Host.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/llmtune/tiny/inference")
        {
            Content = new StringContent("""
                {
                  "prompt": "Summarize LLMTune in one sentence.",
                  "temperature": 0.6,
                  "maxTokens": 200,
                  "metadata": { "conversationId": "optional" }
                }
                """, Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.Key);

        var body = await (await client.SendAsync(request)).Json();

        Assert.Equal(JsonValueKind.String, body.GetProperty("text").ValueKind);
        var tokens = body.GetProperty("tokens").GetInt32();
        Assert.InRange(tokens, 1, 200);
        Assert.Equal("llmtune/tiny", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("latency").GetInt64() >= 0);
        Assert.Equal("optional", body.GetProperty("metadata").GetProperty("conversationId").GetString());
        Assert.Equal(["text", "tokens", "model", "latency", "metadata"], body.EnumerateObject().Select(p => p.Name).ToArray());
    }

    [Fact]
    public async Task Without_a_key_the_call_is_unauthorized()
    {
        using var client = fixture.Host.Client();
        await (await client.PostAsJsonAsync("/v1/models/llmtune/tiny/inference", new { prompt = "hi" })).AssertError(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Greedy_generation_is_deterministic_and_respects_maxTokens()
    {
        using var client = fixture.Client();
        var first = await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 12 })).Json();
        var second = await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 12 })).Json();
        Assert.Equal(first.GetProperty("text").GetString(), second.GetProperty("text").GetString());
        Assert.InRange(first.GetProperty("tokens").GetInt32(), 1, 12);
        Assert.Equal(InferenceHost.Small, first.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Encoded_slash_in_the_model_id_routes_too()
    {
        using var client = fixture.Client();
        var body = await (await client.PostAsJsonAsync("/v1/models/test%2Fsmall/inference", new { prompt = "abc", maxTokens = 3 })).Json();
        Assert.Equal(InferenceHost.Small, body.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Playground_takes_the_model_id_from_the_body()
    {
        using var client = fixture.Client();
        var body = await (await client.PostAsJsonAsync("/v1/playground/inference",
            new { modelId = InferenceHost.Small, prompt = "Hello", temperature = 0.7, maxTokens = 5 })).Json();
        Assert.Equal(InferenceHost.Small, body.GetProperty("model").GetString());
        Assert.InRange(body.GetProperty("tokens").GetInt32(), 1, 5);

        await (await client.PostAsJsonAsync("/v1/playground/inference", new { prompt = "Hello" }))
            .AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "modelId");
        await (await client.PostAsJsonAsync("/v1/playground/inference", new { modelId = "nobody/nothing", prompt = "Hello" }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found", "modelId");
    }

    [Fact]
    public async Task Streaming_sends_deltas_then_a_final_event_with_usage()
    {
        using var client = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/models/{InferenceHost.Small}/inference")
        {
            Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens = 12, stream = true, metadata = new { tag = "s" } }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);

        var events = new List<SseEvent>();
        await foreach (var e in response.ReadEventsAsync())
        {
            events.Add(e);
        }

        var deltas = events.Where(e => e.Name == "delta").Select(e => e.Json.GetProperty("delta").GetString()).ToList();
        var done = Assert.Single(events, e => e.Name == "done").Json;
        Assert.Equal("done", events[^1].Name);
        Assert.NotEmpty(deltas);
        Assert.Equal(string.Concat(deltas), done.GetProperty("text").GetString());
        Assert.InRange(done.GetProperty("tokens").GetInt32(), 1, 12);
        Assert.Contains(done.GetProperty("finishReason").GetString(), new[] { "stop", "length" });
        Assert.True(done.GetProperty("latency").GetInt64() >= 0);
        Assert.Equal("s", done.GetProperty("metadata").GetProperty("tag").GetString());

        // The same request without streaming gives the same greedy text.
        var whole = await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 12 })).Json();
        Assert.Equal(whole.GetProperty("text").GetString(), done.GetProperty("text").GetString());
    }

    [Fact]
    public async Task The_endpoints_are_in_the_openapi_document_and_the_models_count_in_readiness()
    {
        using var client = fixture.Host.Client();
        var document = await (await client.GetAsync("/openapi/v1.json")).Json();
        var paths = document.GetProperty("paths");
        foreach (var path in new[] { "/v1/chat/completions", "/v1/completions", "/v1/playground/inference", "/v1/models" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} is missing from the OpenAPI document");
        }

        var ready = await (await client.GetAsync("/readyz")).Json();
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("inference-models").GetProperty("status").GetString());
    }
}
