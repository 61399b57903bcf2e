using System.Net;
using System.Net.Http.Json;
using System.Text;
using LLMTune.Inference.Tests.Support;

namespace LLMTune.Inference.Tests;

/// <summary>Bad input, unknown models, oversized requests and a full queue each answer in the error shape, never 500.</summary>
public sealed class LimitsAndErrorsTests(InferenceHost fixture)
{
    private const string Native = $"/v1/models/{InferenceHost.Small}/inference";

    [Theory]
    [InlineData("""{"temperature": 2.5, "prompt": "x"}""", "temperature")]
    [InlineData("""{"temperature": -0.1, "prompt": "x"}""", "temperature")]
    [InlineData("""{"topP": 0, "prompt": "x"}""", "topP")]
    [InlineData("""{"topP": 1.5, "prompt": "x"}""", "topP")]
    [InlineData("""{"maxTokens": 0, "prompt": "x"}""", "maxTokens")]
    [InlineData("""{"prompt": ""}""", "prompt")]
    [InlineData("""{"temperature": 0.5}""", "prompt")]
    [InlineData("""{"prompt": "x", "metadata": [1, 2]}""", "metadata")]
    public async Task Native_out_of_range_parameters_answer_400_naming_the_parameter(string body, string param)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync(Native, new StringContent(body, Encoding.UTF8, "application/json"));
        await response.AssertError(HttpStatusCode.BadRequest, "invalid_parameter", param);
    }

    [Theory]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "temperature": 3}""", "temperature", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "top_p": 2}""", "top_p", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}""", "max_tokens", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": -1}""", "max_completion_tokens", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "n": 9}""", "n", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "n": 0}""", "n", "invalid_parameter")]
    [InlineData("""{"model": "test/busy", "messages": [{"role": "user", "content": "x"}], "n": 3}""", "n", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "presence_penalty": 2.5}""", "presence_penalty", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "frequency_penalty": -3}""", "frequency_penalty", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"abc": 1}}""", "logit_bias", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 101}}""", "logit_bias", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"99999999": 1}}""", "logit_bias", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21}""", "top_logprobs", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}""", "top_logprobs", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}""", "stop", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}""", "tools[0].type", "unsupported_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}""", "tool_choice.function.name", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "string", "pattern": "a+"}}}}""", "response_format.json_schema.schema", "unsupported_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}""", "response_format.type", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": []}""", "messages", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "robot", "content": "x"}]}""", "messages[0].role", "invalid_parameter")]
    [InlineData("""{"model": "test/small", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]}""", "messages[0].content", "unsupported_parameter")]
    [InlineData("""{"messages": [{"role": "user", "content": "x"}]}""", "model", "invalid_parameter")]
    public async Task OpenAi_bad_or_unsupported_parameters_answer_400_naming_the_parameter(string body, string param, string code)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        await response.AssertError(HttpStatusCode.BadRequest, code, param);
    }

    [Fact]
    public async Task Defaults_and_ignorable_openai_fields_are_accepted()
    {
        using var client = fixture.Client();
        var body = """
            {"model": "test/small", "messages": [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}, {"role": "user", "content": "x"}],
             "max_tokens": 2, "n": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": false, "user": "u1", "tool_choice": "none",
             "response_format": {"type": "text"}, "stop": "\n\n", "seed": 42}
            """;
        var json = await (await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"))).Json();
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
    }

    [Fact]
    public async Task Malformed_json_and_wrong_content_type_are_client_errors()
    {
        using var client = fixture.Client();
        await (await client.PostAsync(Native, new StringContent("{\"prompt\": ", Encoding.UTF8, "application/json")))
            .AssertError(HttpStatusCode.BadRequest, "invalid_json");
        await (await client.PostAsync("/v1/chat/completions", new StringContent("{\"model\": 5}", Encoding.UTF8, "application/json")))
            .AssertError(HttpStatusCode.BadRequest, "invalid_json");
        await (await client.PostAsync(Native, new StringContent("prompt=x", Encoding.UTF8, "text/plain")))
            .AssertError(HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task Unknown_models_answer_404_model_not_found_everywhere()
    {
        using var client = fixture.Client();
        await (await client.PostAsJsonAsync("/v1/models/meta-llama/Llama-3.3-70B-Instruct/inference", new { prompt = "x" }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found", "modelId");
        await (await client.PostAsJsonAsync("/v1/chat/completions", new { model = "nope", messages = new[] { new { role = "user", content = "x" } } }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found", "model");
        await (await client.PostAsJsonAsync("/v1/completions", new { model = "nope", prompt = "x" }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found", "model");
        await (await client.GetAsync("/v1/models/nope/nothing")).AssertError(HttpStatusCode.NotFound, "model_not_found", "model");
        await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/generate", new { prompt = "x" })).AssertError(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_answers_context_length_exceeded()
    {
        using var client = fixture.Client();
        var longPrompt = string.Concat(Enumerable.Repeat("lorem ipsum dolor sit amet ", 200)); // far beyond 512 tokens
        await (await client.PostAsJsonAsync(Native, new { prompt = longPrompt }))
            .AssertError(HttpStatusCode.BadRequest, "context_length_exceeded", "prompt");
        await (await client.PostAsJsonAsync("/v1/chat/completions", new { model = InferenceHost.Small, messages = new[] { new { role = "user", content = longPrompt } } }))
            .AssertError(HttpStatusCode.BadRequest, "context_length_exceeded", "messages");
    }

    [Fact]
    public async Task MaxTokens_beyond_the_context_answers_context_length_exceeded()
    {
        using var client = fixture.Client();
        await (await client.PostAsJsonAsync(Native, new { prompt = "hello", maxTokens = 100_000 }))
            .AssertError(HttpStatusCode.BadRequest, "context_length_exceeded", "maxTokens");
        await (await client.PostAsJsonAsync("/v1/completions", new { model = InferenceHost.Small, prompt = "hello", max_tokens = 100_000 }))
            .AssertError(HttpStatusCode.BadRequest, "context_length_exceeded", "max_tokens");
    }

    [Fact]
    public async Task A_full_queue_answers_503_with_retry_after_and_frees_when_done()
    {
        using var client = fixture.Client();
        using var running = new HttpRequestMessage(HttpMethod.Post, $"/v1/models/{InferenceHost.Busy}/inference")
        {
            Content = JsonContent.Create(new { prompt = "Once upon a time", temperature = 0, maxTokens = 1500, stream = true }),
        };
        using (var stream = await client.SendAsync(running, HttpCompletionOption.ResponseHeadersRead))
        {
            await using var events = stream.ReadEventsAsync().GetAsyncEnumerator();
            Assert.True(await events.MoveNextAsync()); // the only slot is now generating

            using var busy = fixture.Client();
            var rejected = await busy.PostAsJsonAsync($"/v1/models/{InferenceHost.Busy}/inference", new { prompt = "x", maxTokens = 1 });
            await rejected.AssertError(HttpStatusCode.ServiceUnavailable, "model_busy");
            Assert.True(rejected.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }

        // Leaving the stream freed the slot: the next call is served.
        await LLMTune.Testing.Eventually.True(() => fixture.Stats(InferenceHost.Busy).ActiveSequences == 0, what: "the busy slot to free");
        var served = await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Busy}/inference", new { prompt = "x", maxTokens = 1 });
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }
}
