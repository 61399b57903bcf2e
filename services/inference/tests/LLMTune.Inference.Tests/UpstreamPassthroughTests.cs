using System.Net;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Inference.Tests.Support;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests;

/// <summary>
/// Upstream models are a transparent pass-through: the upstream receives the client's body byte for byte (only
/// <c>model</c> replaced) and the client gets the upstream's answer with every field intact (only <c>model</c> set
/// back to the id it called).
/// </summary>
public sealed class UpstreamPassthroughTests : IAsyncLifetime
{
    private const string ModelId = "rec/model";
    private const string UpstreamModel = "vendor-model-2025";
    private RecordingUpstream _upstream = null!;
    private TestHost _host = null!;
    private readonly PublishedEvents _events = new();

    private const string ToolCallAnswer = """
        {"id":"chatcmpl-up1","object":"chat.completion","created":1,"model":"vendor-model-2025","system_fingerprint":"fp_x",
         "service_tier":"default",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
           "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
           "logprobs":{"content":[{"token":"x","logprob":-0.1,"bytes":[120],"top_logprobs":[]}]},"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":31,"completion_tokens":7,"total_tokens":38,"completion_tokens_details":{"reasoning_tokens":0}}}
        """;

    private const string EmbeddingsAnswer = """
        {"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]},{"object":"embedding","index":1,"embedding":[1.0,0.0]}],
         "model":"vendor-model-2025","usage":{"prompt_tokens":5,"total_tokens":5}}
        """;

    public async ValueTask InitializeAsync()
    {
        _upstream = await RecordingUpstream.StartAsync();
        _upstream.Answers["/v1/chat/completions"] = ToolCallAnswer;
        _upstream.Answers["/v1/completions"] = """{"id":"cmpl-up","object":"text_completion","created":1,"model":"vendor-model-2025","choices":[{"text":"hi","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}""";
        _upstream.Answers["/v1/embeddings"] = EmbeddingsAnswer;
        _upstream.StreamAnswers["/v1/chat/completions"] =
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-model-2025\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
            + "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-model-2025\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
            + "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-model-2025\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n\n"
            + "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-model-2025\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":9,\"total_tokens\":49}}\n\n"
            + "data: [DONE]\n\n";

        _host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            [$"Inference:Models:{ModelId}:Upstream:BaseUrl"] = _upstream.BaseUrl.ToString(),
            [$"Inference:Models:{ModelId}:Upstream:Model"] = UpstreamModel,
            [$"Inference:Models:{ModelId}:Upstream:ApiKey"] = "sk-upstream",
        });
        _host.Services.GetRequiredService<IBus>().ConnectPublishObserver(_events);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private static string ClientBody(bool stream) =>
        "{\"model\": \"rec/model\",\n  \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
        + "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"weather?\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,AAAA\"}}]},"
        + "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_0\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": \"{}\"}}]},"
        + "{\"role\": \"tool\", \"tool_call_id\": \"call_0\", \"content\": \"rain\"}],"
        + "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}],"
        + "\"tool_choice\": \"required\", \"response_format\": {\"type\": \"json_object\"}, \"logprobs\": true, \"top_logprobs\": 2, \"n\": 1,"
        + "\"presence_penalty\": 0.5, \"logit_bias\": {\"50256\": -100}, \"user\": \"u-1\", \"metadata\": {\"k\": \"v\"}, \"store\": false,"
        + "\"reasoning_effort\": \"low\", \"x_vendor_extension\": {\"deep\": [1, 2.50, 3e2]}"
        + (stream ? ", \"stream\":true" : "") + "}";

    [Fact]
    public async Task The_upstream_receives_the_clients_body_byte_for_byte_apart_from_model()
    {
        using var client = _host.Client(_host.InitialKey);
        var sent = ClientBody(stream: false);
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(sent, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var (path, received) = _upstream.Received.Last();
        Assert.Equal("/v1/chat/completions", path);
        Assert.Equal(sent.Replace("\"rec/model\"", $"\"{UpstreamModel}\""), Encoding.UTF8.GetString(received));
    }

    [Fact]
    public async Task Tool_calls_and_logprobs_come_back_unchanged_as_json()
    {
        using var client = _host.Client(_host.InitialKey);
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(ClientBody(stream: false), Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);

        var expected = JsonDocument.Parse(ToolCallAnswer).RootElement;
        var actual = JsonDocument.Parse(body).RootElement;
        Assert.Equal(ModelId, actual.GetProperty("model").GetString());
        foreach (var property in expected.EnumerateObject().Where(p => p.Name != "model"))
        {
            Assert.Equal(property.Value.GetRawText(), actual.GetProperty(property.Name).GetRawText());
        }

        var usage = await Eventually.Get(() => Task.FromResult(_events.Of<InferenceCompleted>().LastOrDefault(e => e.CorrelationId == Header(response))),
            e => e is not null, what: "the call's InferenceCompleted");
        Assert.Equal((31, 7, "tool_calls", ModelId), (usage.PromptTokens, usage.CompletionTokens, usage.FinishReason, usage.Model));
    }

    [Fact]
    public async Task Tool_call_deltas_stream_through_unchanged_and_are_metered()
    {
        using var client = _host.Client(_host.InitialKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(ClientBody(stream: true), Encoding.UTF8, "application/json"),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var relayed = await response.Content.ReadAsStringAsync();

        var expected = _upstream.StreamAnswers["/v1/chat/completions"].Replace($"\"model\":\"{UpstreamModel}\"", $"\"model\":\"{ModelId}\"");
        Assert.Equal(expected, relayed);

        var usage = await Eventually.Get(() => Task.FromResult(_events.Of<InferenceCompleted>().LastOrDefault(e => e.CorrelationId == Header(response))),
            e => e is not null, what: "the stream's InferenceCompleted");
        Assert.Equal((40, 9, "tool_calls", true), (usage.PromptTokens, usage.CompletionTokens, usage.FinishReason, usage.Streamed));
    }

    [Fact]
    public async Task Completions_pass_through_with_no_sampling_defaults_added()
    {
        using var client = _host.Client(_host.InitialKey);
        const string sent = """{"model":"rec/model","prompt":["a","b"],"echo":true,"best_of":2}""";
        var response = await client.PostAsync("/v1/completions", new StringContent(sent, Encoding.UTF8, "application/json"));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var (path, received) = _upstream.Received.Last();
        Assert.Equal("/v1/completions", path);
        Assert.Equal("""{"model":"vendor-model-2025","prompt":["a","b"],"echo":true,"best_of":2}""", Encoding.UTF8.GetString(received));
    }

    [Fact]
    public async Task Embeddings_pass_through_byte_for_byte_and_are_metered()
    {
        using var client = _host.Client(_host.InitialKey);
        const string sent = """{"model": "rec/model", "input": ["a", "b"], "encoding_format": "float", "dimensions": 2, "user": "u", "x_extra": [1]}""";
        var response = await client.PostAsync("/v1/embeddings", new StringContent(sent, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);

        var (path, received) = _upstream.Received.Last();
        Assert.Equal("/v1/embeddings", path);
        Assert.Equal(sent.Replace("\"rec/model\"", $"\"{UpstreamModel}\""), Encoding.UTF8.GetString(received));
        Assert.Equal(EmbeddingsAnswer.Replace($"\"model\":\"{UpstreamModel}\"", $"\"model\":\"{ModelId}\""), body);
        var usage = await Eventually.Get(() => Task.FromResult(_events.Of<InferenceCompleted>().LastOrDefault(e => e.CorrelationId == Header(response))),
            e => e is not null, what: "the embeddings' InferenceCompleted");
        Assert.Equal((5, 0, ModelId), (usage.PromptTokens, usage.CompletionTokens, usage.Model));
    }

    [Fact]
    public async Task Native_embeddings_on_an_upstream_model_ask_its_embeddings_endpoint_and_answer_camel_case()
    {
        using var client = _host.Client(_host.InitialKey);
        var response = await client.PostAsync("/v1/models/rec/model/embeddings",
            new StringContent("""{"input": ["a", "b"], "encodingFormat": "float"}""", Encoding.UTF8, "application/json"));
        var json = await response.Json();

        var (path, received) = _upstream.Received.Last();
        Assert.Equal("/v1/embeddings", path);
        Assert.Equal($$"""{"model":"{{UpstreamModel}}","input":["a","b"],"encoding_format":"float"}""", Encoding.UTF8.GetString(received));
        Assert.Equal(ModelId, json.GetProperty("model").GetString());
        Assert.Equal(5, json.GetProperty("tokens").GetInt32());
        Assert.Equal([0.6f, 0.8f], json.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()));
        Assert.Equal(1, json.GetProperty("data")[1].GetProperty("index").GetInt32());
    }

    private static string Header(HttpResponseMessage response) => response.Headers.GetValues("x-request-id").First();
}
