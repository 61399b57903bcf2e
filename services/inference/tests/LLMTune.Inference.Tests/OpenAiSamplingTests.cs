using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests;

/// <summary>
/// OpenAI's sampling parameters on the bundled model (<c>llmtune/tiny</c>): n, logprobs, seed, penalties, logit_bias,
/// on JSON and SSE, and embeddings on the OpenAI and native routes.
/// </summary>
public sealed class OpenAiSamplingTests(InferenceHost fixture)
{
    private const string Model = "llmtune/tiny";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonElement> PostAsync(string path, object body, HttpStatusCode status = HttpStatusCode.OK)
    {
        using var client = fixture.Client();
        return await (await client.PostAsJsonAsync(path, body, Ct)).Json(status);
    }

    private static object Chat(string prompt, int maxTokens, object? extra = null, string model = Model)
    {
        var body = new Dictionary<string, object?>
        {
            ["model"] = model,
            ["messages"] = new[] { new { role = "user", content = prompt } },
            ["max_tokens"] = maxTokens,
        };
        foreach (var property in JsonSerializer.SerializeToElement(extra ?? new { }).EnumerateObject())
        {
            body[property.Name] = property.Value;
        }

        return body;
    }

    private static string[] Contents(JsonElement completion) =>
        completion.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()!).ToArray();

    [Fact]
    public async Task N_3_returns_3_choices_and_usage_counts_the_tokens_of_all_of_them()
    {
        var json = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 6, new { n = 3, temperature = 1, seed = 11, logprobs = true }));

        var choices = json.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(3, choices.Length);
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        var tokens = choices.Sum(c => c.GetProperty("logprobs").GetProperty("content").GetArrayLength());
        var usage = json.GetProperty("usage");
        Assert.Equal(tokens, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + tokens, usage.GetProperty("total_tokens").GetInt32());
        Assert.True(Contents(json).Distinct().Count() > 1, "three sampled choices should not all be equal: " + string.Join(" | ", Contents(json)));
    }

    /// <summary>The bundled model runs with its default 4 request slots: choices beyond the first take its choice sequences.</summary>
    [Fact]
    public async Task N_8_returns_8_choices_on_json_and_the_same_seeded_texts_on_sse()
    {
        var body = Chat("Tell me a story.", 6, new { n = 8, temperature = 1, seed = 21 });
        var json = await PostAsync("/v1/chat/completions", body);
        Assert.Equal(Enumerable.Range(0, 8), json.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.True(Contents(json).Distinct().Count() > 1, "eight sampled choices should not all be equal: " + string.Join(" | ", Contents(json)));

        using var client = fixture.Client();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", Chat("Tell me a story.", 6, new { n = 8, temperature = 1, seed = 21, stream = true }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var texts = Enumerable.Range(0, 8).Select(_ => new StringBuilder()).ToArray();
        var finishes = new string?[8];
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                break;
            }

            foreach (var choice in sse.Json.GetProperty("choices").EnumerateArray())
            {
                var index = choice.GetProperty("index").GetInt32();
                if (choice.GetProperty("delta").TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    texts[index].Append(content.GetString());
                }

                if (choice.GetProperty("finish_reason") is { ValueKind: JsonValueKind.String } finish)
                {
                    finishes[index] = finish.GetString();
                }
            }
        }

        Assert.Equal(Contents(json), texts.Select(t => t.ToString()));
        Assert.All(finishes, Assert.NotNull);
    }

    [Theory]
    [InlineData(Model, 9)]
    [InlineData(InferenceHost.Busy, 3)] // configured with one choice sequence: at most 2 choices
    public async Task N_beyond_what_the_model_gives_is_a_400_naming_n(string model, int n)
    {
        var json = await PostAsync("/v1/chat/completions", Chat("Hi", 2, new { n }, model), HttpStatusCode.BadRequest);

        Assert.Equal("n", json.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Logprobs_have_one_entry_per_token_with_top_alternatives_and_bytes()
    {
        var json = await PostAsync("/v1/chat/completions", Chat("Say something.", 8, new { temperature = 0, logprobs = true, top_logprobs = 3 }));

        var choice = json.GetProperty("choices")[0];
        var content = choice.GetProperty("logprobs").GetProperty("content").EnumerateArray().ToArray();
        Assert.Equal(json.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), content.Length);
        foreach (var entry in content)
        {
            Assert.True(entry.GetProperty("logprob").GetDouble() <= 0);
            var top = entry.GetProperty("top_logprobs").EnumerateArray().ToArray();
            Assert.Equal(3, top.Length);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(top[0].GetProperty("token").GetString(), entry.GetProperty("token").GetString());
            var bytes = entry.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
            Assert.Equal(entry.GetProperty("token").GetString(), Encoding.UTF8.GetString(bytes));
        }

        Assert.Equal(choice.GetProperty("message").GetProperty("content").GetString(), string.Concat(content.Select(c => c.GetProperty("token").GetString())));
        var plain = await PostAsync("/v1/chat/completions", Chat("Say something.", 8, new { temperature = 0 }));
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("choices")[0].GetProperty("logprobs").ValueKind);
    }

    [Fact]
    public async Task A_fixed_seed_repeats_the_text_and_another_seed_changes_it()
    {
        var request = Chat("Once upon a time", 16, new { temperature = 1, seed = 42 });

        var first = Contents(await PostAsync("/v1/chat/completions", request))[0];
        var second = Contents(await PostAsync("/v1/chat/completions", request))[0];
        var other = Contents(await PostAsync("/v1/chat/completions", Chat("Once upon a time", 16, new { temperature = 1, seed = 43 })))[0];

        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task A_logit_bias_of_minus_100_keeps_a_token_out_and_plus_100_forces_it()
    {
        var model = fixture.Host.Services.GetRequiredService<ModelManager>().Get(Model);
        var free = new List<GeneratedToken>();
        await foreach (var token in model.GenerateAsync(new GenerationRequest { Messages = [ChatMessage.User("Tell me a story.")], MaxTokens = 12, Temperature = 0 }, Ct))
        {
            free.Add(token);
        }

        var banned = free.Where(t => t.Text.Length > 0).GroupBy(t => t.TokenId).OrderByDescending(g => g.Count()).First().First();
        var bias = new Dictionary<string, int> { [banned.TokenId.ToString(System.Globalization.CultureInfo.InvariantCulture)] = -100 };

        var freeJson = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 12, new { temperature = 0, logprobs = true }));
        var bannedJson = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 12, new { temperature = 0, logprobs = true, logit_bias = bias }));
        var forcedJson = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 4,
            new { temperature = 1, seed = 1, logprobs = true, logit_bias = new Dictionary<string, int> { [bias.Keys.Single()] = 100 } }));

        static string[] Tokens(JsonElement json) =>
            json.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray().Select(c => c.GetProperty("token").GetString()!).ToArray();
        Assert.Contains(banned.Text, Tokens(freeJson));
        Assert.DoesNotContain(banned.Text, Tokens(bannedJson));
        Assert.All(Tokens(forcedJson), t => Assert.Equal(banned.Text, t));
    }

    /// <summary>On the random test model: the bundled one answers in a few tokens, too short to repeat itself.</summary>
    [Fact]
    public async Task Frequency_and_presence_penalties_change_what_greedy_decoding_repeats()
    {
        static int Distinct(JsonElement json) =>
            json.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray().Select(c => c.GetProperty("token").GetString()).Distinct().Count();

        var free = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 40, new { temperature = 0, logprobs = true }, InferenceHost.Small));
        var frequency = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 40, new { temperature = 0, logprobs = true, frequency_penalty = 2 }, InferenceHost.Small));
        var presence = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 40, new { temperature = 0, logprobs = true, presence_penalty = 2 }, InferenceHost.Small));

        Assert.True(Distinct(frequency) > Distinct(free), $"distinct tokens: {Distinct(free)} free, {Distinct(frequency)} with frequency_penalty");
        Assert.True(Distinct(presence) > Distinct(free), $"distinct tokens: {Distinct(free)} free, {Distinct(presence)} with presence_penalty");
    }

    [Fact]
    public async Task Streaming_n_2_with_logprobs_sends_each_choice_by_index_one_logprob_per_token_and_usage_for_all()
    {
        using var client = fixture.Client();
        var body = Chat("Tell me a story.", 5, new { n = 2, temperature = 0, logprobs = true, stream = true, stream_options = new { include_usage = true } });
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", body, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var texts = new[] { new StringBuilder(), new StringBuilder() };
        var logprobs = new int[2];
        var roles = new int[2];
        var finishes = new string?[2];
        JsonElement? usage = null;
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                break;
            }

            var chunk = sse.Json;
            if (chunk.GetProperty("usage").ValueKind == JsonValueKind.Object)
            {
                usage = chunk.GetProperty("usage");
            }

            foreach (var choice in chunk.GetProperty("choices").EnumerateArray())
            {
                var index = choice.GetProperty("index").GetInt32();
                var delta = choice.GetProperty("delta");
                roles[index] += delta.TryGetProperty("role", out _) ? 1 : 0;
                if (delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    texts[index].Append(content.GetString());
                }

                if (choice.GetProperty("logprobs") is { ValueKind: JsonValueKind.Object } chunkLogprobs)
                {
                    Assert.Equal(1, chunkLogprobs.GetProperty("content").GetArrayLength());
                    logprobs[index]++;
                }

                if (choice.GetProperty("finish_reason") is { ValueKind: JsonValueKind.String } finish)
                {
                    finishes[index] = finish.GetString();
                }
            }
        }

        var whole = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 5, new { n = 2, temperature = 0 }));
        Assert.Equal([1, 1], roles);
        Assert.Equal(Contents(whole), texts.Select(t => t.ToString()));
        Assert.All(finishes, Assert.NotNull);
        Assert.NotNull(usage);
        Assert.Equal(logprobs.Sum(), usage!.Value.GetProperty("completion_tokens").GetInt32());
    }

    /// <summary>On the random test model, whose answers run to max_tokens.</summary>
    [Fact]
    public async Task Stop_ends_every_choice_before_the_stop_text()
    {
        var free = Contents(await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 20, new { temperature = 0 }, InferenceHost.Small)))[0];
        Assert.True(free.Length > 6, free);
        var stop = free.Substring(3, 2);

        var json = await PostAsync("/v1/chat/completions", Chat("Tell me a story.", 20, new { temperature = 0, n = 2, stop }, InferenceHost.Small));

        Assert.All(json.GetProperty("choices").EnumerateArray(), c =>
        {
            Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
            Assert.Equal(free[..free.IndexOf(stop, StringComparison.Ordinal)], c.GetProperty("message").GetProperty("content").GetString());
        });
    }

    [Fact]
    public async Task Completions_logprobs_come_in_the_legacy_shape()
    {
        var json = await PostAsync("/v1/completions", new { model = Model, prompt = "Once upon a time", max_tokens = 6, temperature = 0, logprobs = 2, n = 2 });

        var choices = json.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(2, choices.Length);
        var total = 0;
        foreach (var choice in choices)
        {
            var logprobs = choice.GetProperty("logprobs");
            var tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
            var offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToArray();
            Assert.Equal(tokens.Length, logprobs.GetProperty("token_logprobs").GetArrayLength());
            Assert.All(logprobs.GetProperty("top_logprobs").EnumerateArray(), top => Assert.InRange(top.EnumerateObject().Count(), 1, 2));
            Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(tokens));
            Assert.Equal(0, offsets[0]);
            Assert.Equal(offsets.Skip(1), offsets.Zip(tokens, (o, t) => o + t.Length).SkipLast(1));
            total += tokens.Length;
        }

        Assert.Equal(total, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeddings_of_the_same_text_are_identical_and_of_different_texts_differ()
    {
        var json = await PostAsync("/v1/embeddings", new { model = Model, input = new[] { "the cat sat on the mat", "the cat sat on the mat", "stock markets fell" } });

        Assert.Equal("list", json.GetProperty("object").GetString());
        Assert.Equal(Model, json.GetProperty("model").GetString());
        var vectors = json.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
        Assert.Equal([0, 1, 2], json.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("index").GetInt32()));
        Assert.Equal(vectors[0], vectors[1]);
        Assert.NotEqual(vectors[0], vectors[2]);
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 3));
        var width = fixture.Host.Services.GetRequiredService<ModelManager>().Get(Model).Summary.EmbeddingLength;
        Assert.All(vectors, v => Assert.Equal(width, v.Length));
        var usage = json.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 6);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());

        var base64 = await PostAsync("/v1/embeddings", new { model = Model, input = "stock markets fell", encoding_format = "base64", dimensions = width });
        var decoded = Convert.FromBase64String(base64.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(vectors[2], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(decoded).ToArray());
    }

    [Fact]
    public async Task Token_array_inputs_embed_like_their_text_and_the_native_route_answers_camel_case()
    {
        var model = fixture.Host.Services.GetRequiredService<ModelManager>().Get(Model);
        var tokens = model.TokenizeForEmbedding("hello there");

        var fromText = await PostAsync("/v1/embeddings", new { model = Model, input = "hello there" });
        var fromTokens = await PostAsync("/v1/embeddings", new { model = Model, input = new[] { tokens } });
        var native = await PostAsync($"/v1/models/{Model}/embeddings", new { input = "hello there", encodingFormat = "float" });

        Assert.Equal(fromText.GetProperty("data")[0].GetProperty("embedding").GetRawText(), fromTokens.GetProperty("data")[0].GetProperty("embedding").GetRawText());
        Assert.Equal(Model, native.GetProperty("model").GetString());
        Assert.Equal(tokens.Length, native.GetProperty("tokens").GetInt32());
        Assert.Equal(fromText.GetProperty("data")[0].GetProperty("embedding").GetRawText(), native.GetProperty("data")[0].GetProperty("embedding").GetRawText());
    }

    [Fact]
    public async Task Embeddings_are_metered_like_inference()
    {
        using var client = fixture.Client();
        var response = await client.PostAsJsonAsync("/v1/embeddings", new { model = Model, input = "metered text" }, Ct);
        var json = await response.Json();
        var requestId = response.Headers.GetValues("x-request-id").First();

        var usage = await Eventually.Get(() => Task.FromResult(fixture.Events.Of<InferenceCompleted>().LastOrDefault(e => e.CorrelationId == requestId)),
            e => e is not null, what: "the embeddings' InferenceCompleted");
        Assert.Equal((json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), 0, Model), (usage!.PromptTokens, usage.CompletionTokens, usage.Model));
    }

    [Theory]
    [InlineData("""{"model": "llmtune/tiny", "input": ""}""", "input")]
    [InlineData("""{"model": "llmtune/tiny", "input": [1, "a"]}""", "input")]
    [InlineData("""{"model": "llmtune/tiny", "input": [[99999999]]}""", "input")]
    [InlineData("""{"model": "llmtune/tiny", "input": "x", "encoding_format": "int8"}""", "encoding_format")]
    [InlineData("""{"model": "llmtune/tiny", "input": "x", "dimensions": 3}""", "dimensions")]
    [InlineData("""{"input": "x"}""", "model")]
    public async Task Bad_embeddings_requests_answer_400_naming_the_parameter(string body, string param)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/embeddings", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        await response.AssertError(HttpStatusCode.BadRequest, "invalid_parameter", param);
    }

    [Fact]
    public async Task The_openapi_document_names_openai_request_fields_in_snake_case()
    {
        using var client = fixture.Host.Client();
        var document = JsonDocument.Parse(await client.GetStringAsync("/openapi/v1.json", Ct)).RootElement;
        var schemas = document.GetProperty("components").GetProperty("schemas");

        var chat = schemas.GetProperty("ChatCompletionRequest").GetProperty("properties");
        foreach (var name in new[] { "max_tokens", "max_completion_tokens", "top_p", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "stream_options", "n", "seed", "stop" })
        {
            Assert.True(chat.TryGetProperty(name, out _), $"ChatCompletionRequest lacks {name}");
        }

        Assert.False(chat.TryGetProperty("maxTokens", out _));
        Assert.True(schemas.GetProperty("EmbeddingsRequest").GetProperty("properties").TryGetProperty("encoding_format", out _));
        Assert.True(schemas.GetProperty("NativeEmbeddingsRequest").GetProperty("properties").TryGetProperty("encodingFormat", out _));
        Assert.True(document.GetProperty("paths").TryGetProperty("/v1/embeddings", out _));
    }
}
