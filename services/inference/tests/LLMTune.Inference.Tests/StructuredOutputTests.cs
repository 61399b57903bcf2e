using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Json.Schema;
using LLMTune.Inference.Tests.Support;

namespace LLMTune.Inference.Tests;

/// <summary>
/// <c>response_format</c> and <c>tools</c> on the bundled model: constrained decoding makes even a toy model answer
/// JSON that matches the schema, checked with an independent JSON-schema validator.
/// </summary>
public sealed class StructuredOutputTests(InferenceHost fixture)
{
    private const string Model = "llmtune/tiny";

    private const string AnswerSchema = """
        {"type": "object", "properties": {
            "answer": {"type": "string", "maxLength": 10},
            "score": {"type": "integer"},
            "ok": {"type": "boolean"},
            "tag": {"enum": ["red", "green", null]},
            "note": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/short"}]},
            "list": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}},
          "required": ["answer", "score", "ok", "tag", "list"],
          "additionalProperties": false,
          "$defs": {"short": {"type": "string", "maxLength": 4}}}
        """;

    private const string WeatherParameters = """
        {"type": "object", "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 12}, "unit": {"enum": ["c", "f"]}, "days": {"type": "integer"}},
         "required": ["city", "unit"], "additionalProperties": false}
        """;

    private static readonly string[] Prompts =
    [
        "What is the capital of France?", "What is the colour of a banana?", "Add 3 and 4.", "Subtract 2 from 9.", "hello!",
        "Make cloud uppercase.", "Give the first letter of lemon.", "What noise does a frog make?", "Who are you?", "How long is the word moon?",
        "Which city is the capital of Hungary?", "Last letter of leaf?", "Add 15 and 6.", "What colour is grass?", "hey!!",
        "What is your name?", "Make tree uppercase.", "What sound does a cow make?", "Subtract 12 from 15.", "Capital of Japan?",
    ];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Json_schema_answers_parse_and_validate_against_the_schema_on_20_prompts()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(AnswerSchema);
        Assert.Equal(20, Prompts.Distinct().Count());

        foreach (var (prompt, i) in Prompts.Select((p, i) => (p, i)))
        {
            var body = await (await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = Model,
                messages = new[] { new { role = "user", content = prompt } },
                seed = i,
                response_format = new { type = "json_schema", json_schema = new { name = "answer", strict = true, schema = JsonDocument.Parse(AnswerSchema).RootElement } },
            }, Ct)).Json();

            var choice = body.GetProperty("choices")[0];
            var content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            AssertValid(schema, content, prompt);
        }
    }

    [Fact]
    public async Task Json_object_answers_are_a_json_object()
    {
        using var client = fixture.Client();
        for (var seed = 0; seed < 3; seed++)
        {
            var body = await (await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = Model,
                messages = new[] { new { role = "user", content = "Reply in JSON: what is the colour of a banana?" } },
                seed,
                response_format = new { type = "json_object" },
            }, Ct)).Json();

            var choice = body.GetProperty("choices")[0];
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(choice.GetProperty("message").GetProperty("content").GetString()!).RootElement.ValueKind);
        }
    }

    [Fact]
    public async Task A_named_tool_choice_returns_tool_calls_whose_arguments_validate()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(WeatherParameters);
        for (var seed = 0; seed < 5; seed++)
        {
            var body = await (await client.PostAsJsonAsync("/v1/chat/completions", WeatherRequest(new { type = "function", function = new { name = "get_weather" } }, seed, stream: false), Ct)).Json();

            var choice = body.GetProperty("choices")[0];
            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            var message = choice.GetProperty("message");
            Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
            var call = Assert.Single(message.GetProperty("tool_calls").EnumerateArray());
            Assert.StartsWith("call_", call.GetProperty("id").GetString());
            Assert.Equal("function", call.GetProperty("type").GetString());
            Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
            AssertValid(schema, call.GetProperty("function").GetProperty("arguments").GetString()!, $"seed {seed}");
        }
    }

    [Fact]
    public async Task Required_tool_choice_calls_a_listed_function_with_valid_arguments()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(WeatherParameters);
        var body = await (await client.PostAsJsonAsync("/v1/chat/completions", WeatherRequest("required", seed: 7, stream: false, parallel: false), Ct)).Json();

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray()).GetProperty("function");
        var name = call.GetProperty("name").GetString();
        Assert.Contains(name, new[] { "get_weather", "get_time" });
        if (name == "get_weather")
        {
            AssertValid(schema, call.GetProperty("arguments").GetString()!, "required");
        }
        else
        {
            Assert.Equal("{}", call.GetProperty("arguments").GetString()!.Replace(" ", "").Replace("\n", ""));
        }
    }

    [Fact]
    public async Task Tool_results_and_earlier_calls_are_accepted_in_the_conversation()
    {
        using var client = fixture.Client();
        var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            max_tokens = 8,
            messages = new object[]
            {
                new { role = "user", content = "Weather?" },
                new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "call_1", type = "function", function = new { name = "get_weather", arguments = """{"city":"Oslo","unit":"c"}""" } } } },
                new { role = "tool", tool_call_id = "call_1", content = "3 degrees" },
            },
            tools = Tools(),
        }, Ct);

        var body = await response.Json();
        Assert.True(body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 30);

        var missingId = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            messages = new object[] { new { role = "user", content = "x" }, new { role = "tool", content = "3 degrees" } },
        }, Ct);
        await missingId.AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "messages[1].tool_call_id");
    }

    [Fact]
    public async Task Streamed_named_tool_call_arrives_as_tool_call_deltas_that_assemble_into_valid_arguments()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(WeatherParameters);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(WeatherRequest(new { type = "function", function = new { name = "get_weather" } }, seed: 3, stream: true)),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var arguments = new StringBuilder();
        string? id = null, name = null, finish = null;
        var deltas = 0;
        var done = false;
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                done = true;
                break;
            }

            var choice = sse.Json.GetProperty("choices")[0];
            if (choice.GetProperty("finish_reason").GetString() is { } reason)
            {
                finish = reason;
            }

            if (choice.GetProperty("delta").TryGetProperty("tool_calls", out var calls))
            {
                var call = Assert.Single(calls.EnumerateArray());
                Assert.Equal(0, call.GetProperty("index").GetInt32());
                if (call.TryGetProperty("id", out var callId))
                {
                    Assert.Null(id);
                    id = callId.GetString();
                    name = call.GetProperty("function").GetProperty("name").GetString();
                    Assert.Equal("function", call.GetProperty("type").GetString());
                }

                arguments.Append(call.GetProperty("function").GetProperty("arguments").GetString());
                deltas++;
            }
        }

        Assert.True(done);
        Assert.StartsWith("call_", id);
        Assert.Equal("get_weather", name);
        Assert.True(deltas > 1, "the arguments stream in pieces");
        Assert.Equal("tool_calls", finish);
        AssertValid(schema, arguments.ToString(), "stream");
    }

    [Fact]
    public async Task Streamed_named_tool_call_with_n_choices_streams_each_choice_its_own_call_like_the_json_answer()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(WeatherParameters);
        var named = new { type = "function", function = new { name = "get_weather" } };
        object Body(bool stream) => new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "Weather in Oslo?" } },
            tools = Tools(),
            tool_choice = named,
            n = 3,
            temperature = 1,
            seed = 17,
            logprobs = true,
            stream,
        };

        var whole = await (await client.PostAsJsonAsync("/v1/chat/completions", Body(stream: false), Ct)).Json();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", Body(stream: true), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var arguments = Enumerable.Range(0, 3).Select(_ => new StringBuilder()).ToArray();
        var ids = new string?[3];
        var names = new string?[3];
        var finishes = new string?[3];
        var logprobs = new int[3];
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                break;
            }

            foreach (var choice in sse.Json.GetProperty("choices").EnumerateArray())
            {
                var index = choice.GetProperty("index").GetInt32();
                if (choice.GetProperty("finish_reason").GetString() is { } reason)
                {
                    finishes[index] = reason;
                }

                if (choice.TryGetProperty("logprobs", out var chunkLogprobs) && chunkLogprobs.ValueKind == JsonValueKind.Object)
                {
                    logprobs[index] += chunkLogprobs.GetProperty("content").GetArrayLength();
                }

                if (choice.GetProperty("delta").TryGetProperty("tool_calls", out var calls))
                {
                    var call = Assert.Single(calls.EnumerateArray());
                    Assert.Equal(0, call.GetProperty("index").GetInt32());
                    if (call.TryGetProperty("id", out var callId))
                    {
                        Assert.Null(ids[index]);
                        ids[index] = callId.GetString();
                        names[index] = call.GetProperty("function").GetProperty("name").GetString();
                    }

                    arguments[index].Append(call.GetProperty("function").GetProperty("arguments").GetString());
                }
            }
        }

        var expected = whole.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(3, expected.Length);
        for (var i = 0; i < 3; i++)
        {
            var call = Assert.Single(expected[i].GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            Assert.Equal(call.GetProperty("function").GetProperty("arguments").GetString(), arguments[i].ToString());
            AssertValid(schema, arguments[i].ToString(), $"choice {i}");
            Assert.StartsWith("call_", ids[i]);
            Assert.Equal("get_weather", names[i]);
            Assert.Equal(expected[i].GetProperty("finish_reason").GetString(), finishes[i]);
            Assert.Equal(expected[i].GetProperty("logprobs").GetProperty("content").GetArrayLength(), logprobs[i]);
        }

        Assert.Equal(3, ids.Distinct().Count());
        Assert.True(arguments.Select(a => a.ToString()).Distinct().Count() > 1, "sampled choices should not all call with the same arguments");
    }

    [Fact]
    public async Task Streamed_json_schema_content_assembles_into_valid_json()
    {
        using var client = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model = Model,
                stream = true,
                seed = 11,
                messages = new[] { new { role = "user", content = "Add 3 and 4." } },
                response_format = new { type = "json_schema", json_schema = new { name = "answer", schema = JsonDocument.Parse(AnswerSchema).RootElement } },
            }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        var content = new StringBuilder();
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                break;
            }

            if (sse.Json.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var piece))
            {
                content.Append(piece.GetString());
            }
        }

        AssertValid(JsonSchema.FromText(AnswerSchema), content.ToString(), "stream");
    }

    [Fact]
    public async Task With_n_choices_every_choice_follows_the_schema_and_carries_its_logprobs()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(AnswerSchema);
        var body = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "Add 3 and 4." } },
            n = 3,
            seed = 2,
            logprobs = true,
            presence_penalty = 0.5,
            response_format = new { type = "json_schema", json_schema = new { name = "answer", schema = JsonDocument.Parse(AnswerSchema).RootElement } },
        }, Ct)).Json();

        var choices = body.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        var tokens = 0;
        foreach (var choice in choices)
        {
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            AssertValid(schema, choice.GetProperty("message").GetProperty("content").GetString()!, $"choice {choice.GetProperty("index")}");
            tokens += choice.GetProperty("logprobs").GetProperty("content").GetArrayLength();
        }

        Assert.Equal(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), tokens);
    }

    [Fact]
    public async Task With_n_choices_each_choice_makes_its_own_tool_call()
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(WeatherParameters);
        var request = JsonSerializer.SerializeToNode(WeatherRequest(new { type = "function", function = new { name = "get_weather" } }, seed: 4, stream: false))!;
        request["n"] = 2;
        var body = await (await client.PostAsJsonAsync("/v1/chat/completions", request, Ct)).Json();

        var choices = body.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(2, choices.Length);
        var ids = new HashSet<string>();
        foreach (var choice in choices)
        {
            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            Assert.True(ids.Add(call.GetProperty("id").GetString()!), "each choice's call has its own id");
            AssertValid(schema, call.GetProperty("function").GetProperty("arguments").GetString()!, $"choice {choice.GetProperty("index")}");
        }
    }

    [Fact]
    public async Task Streamed_required_tool_calls_with_n_choices_arrive_under_each_choice_index()
    {
        using var client = fixture.Client();
        var request = JsonSerializer.SerializeToNode(WeatherRequest("required", seed: 9, stream: true, parallel: false))!;
        request["n"] = 2;
        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(request) };
        using var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var names = new Dictionary<int, string?>();
        var finish = new Dictionary<int, string>();
        await foreach (var sse in response.ReadEventsAsync(Ct))
        {
            if (sse.Data == "[DONE]")
            {
                break;
            }

            var choice = sse.Json.GetProperty("choices")[0];
            var index = choice.GetProperty("index").GetInt32();
            if (choice.GetProperty("finish_reason").GetString() is { } reason)
            {
                finish[index] = reason;
            }

            if (choice.GetProperty("delta").TryGetProperty("tool_calls", out var calls))
            {
                var call = Assert.Single(calls.EnumerateArray());
                Assert.False(names.ContainsKey(index), "required sends each choice's call once, at the end");
                names[index] = call.GetProperty("function").GetProperty("name").GetString();
            }
        }

        Assert.Equal([0, 1], names.Keys.Order());
        Assert.All(names.Values, name => Assert.Contains(name, new[] { "get_weather", "get_time" }));
        Assert.Equal("tool_calls", finish[0]);
        Assert.Equal("tool_calls", finish[1]);
    }

    [Theory]
    [InlineData("""{"type": "array", "items": {"type": "string", "format": "date"}, "minItems": 1, "maxItems": 2}""")]
    [InlineData("""{"type": "object", "properties": {"a": {"type": ["integer", "null"]}, "b": {"const": "x"}, "c": {"type": "string", "format": "uuid"}}, "required": ["b"]}""")]
    [InlineData("""{"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "boolean"}}}""")]
    [InlineData("""{"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}}, "required": ["kind"], "additionalProperties": false}, {"type": "integer"}]}""")]
    [InlineData("""{"type": "string", "enum": ["a\"b", "c\\d", "é", "line\nbreak"]}""")]
    [InlineData("""{"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}, "t": {"type": "string", "format": "time"}}, "required": ["when", "t"], "additionalProperties": false}""")]
    [InlineData("""{"type": "object", "additionalProperties": false}""")]
    [InlineData("""{"type": "array", "maxItems": 0}""")]
    [InlineData("""{"type": "object", "properties": {"a b\"c": {"type": "boolean"}, "1": {"type": "null"}}, "required": ["a b\"c", "1"], "additionalProperties": false}""")]
    [InlineData("""{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"p": {"$ref": "#/definitions/pair"}}, "required": ["p"], "definitions": {"pair": {"type": "array", "items": {"enum": [1, 2.5, true]}, "minItems": 2, "maxItems": 2}}}""")]
    [InlineData("""{"type": "array", "items": {"type": "string", "format": "date"}, "minItems": 12, "maxItems": 12}""")]
    [InlineData("""{"type": "object", "additionalProperties": {"type": "integer"}}""")]
    [InlineData("""{"minLength": 2, "maxLength": 4}""")]
    [InlineData("""{"properties": {"a": {"type": "boolean"}}, "required": ["a"]}""")]
    [InlineData("""{"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind", "x"]}, {"type": "object", "properties": {"kind": {"enum": ["b", "c"]}, "y": {"type": "string", "maxLength": 3}}, "required": ["kind", "y"]}]}""")]
    [InlineData("""{"oneOf": [{"const": 1}, {"const": 2}, {"type": "string", "maxLength": 2}, {"$ref": "#/$defs/flag"}], "$defs": {"flag": {"type": "boolean"}}}""")]
    [InlineData("""{"type": "array", "items": {"type": "integer"}, "uniqueItems": false, "maxItems": 3}""")]
    [InlineData("""{"type": "string", "enum": ["a", 1, "b"]}""")]
    [InlineData("""{"type": "array", "items": {"type": "string", "maxLength": 4}, "minItems": 1, "maxItems": 1, "uniqueItems": true}""")]
    public async Task Each_supported_keyword_gives_answers_that_validate(string schemaText)
    {
        using var client = fixture.Client();
        var schema = JsonSchema.FromText(schemaText);
        var body = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "hello!" } },
            seed = 5,
            n = 8,
            temperature = 1,
            response_format = new { type = "json_schema", json_schema = new { name = "r", schema = JsonDocument.Parse(schemaText).RootElement } },
        }, Ct)).Json();

        Assert.Equal(8, body.GetProperty("choices").GetArrayLength());
        foreach (var choice in body.GetProperty("choices").EnumerateArray())
        {
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            AssertValid(schema, choice.GetProperty("message").GetProperty("content").GetString()!, schemaText);
        }
    }

    [Theory]
    [InlineData("""{"type": "string", "pattern": "^a+$"}""", "pattern")]
    [InlineData("""{"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}}""", "minimum")]
    [InlineData("""{"type": "string", "format": "email"}""", "email")]
    [InlineData("""{"allOf": [{"type": "string"}]}""", "allOf")]
    [InlineData("""{"$ref": "https://example.com/schema"}""", "$ref")]
    [InlineData("""{"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}""", "itself")]
    [InlineData("""{"oneOf": [{"type": "integer"}, {"type": "number"}]}""", "oneOf")]
    [InlineData("""{"oneOf": [{"type": "string"}, {"const": "a"}]}""", "oneOf")]
    [InlineData("""{"oneOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "object", "properties": {"b": {"type": "string"}}}]}""", "oneOf")]
    [InlineData("""{"type": "array", "items": {"type": "integer"}, "uniqueItems": true}""", "uniqueItems")]
    [InlineData("""{"type": "integer", "format": "int32"}""", "format")]
    [InlineData("""{"type": "object", "anyOf": [{"required": ["a"]}]}""", "anyOf")]
    [InlineData("""{"type": "string", "enum": ["ab", "c"], "maxLength": 1}""", "maxLength")]
    [InlineData("""{"minLength": 1, "minItems": 1}""", "minItems")]
    [InlineData("""{"type": "object", "minProperties": 1}""", "minProperties")]
    [InlineData("""{"type": "object", "patternProperties": {"^a": {"type": "string"}}}""", "patternProperties")]
    [InlineData("""{"type": "array", "prefixItems": [{"type": "string"}]}""", "prefixItems")]
    [InlineData("""{"not": {"type": "string"}}""", "not")]
    public async Task A_schema_keyword_the_grammar_cannot_enforce_is_a_400_naming_it(string schema, string keyword)
    {
        using var client = fixture.Client();
        var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "x" } },
            response_format = new { type = "json_schema", json_schema = new { name = "r", schema = JsonDocument.Parse(schema).RootElement } },
        }, Ct);

        var error = await response.AssertError(HttpStatusCode.BadRequest, "unsupported_parameter", "response_format.json_schema.schema");
        Assert.Contains(keyword, error.GetProperty("message").GetString());
    }

    private static object[] Tools() =>
    [
        new { type = "function", function = new { name = "get_weather", description = "Weather in a city", parameters = JsonDocument.Parse(WeatherParameters).RootElement } },
        new { type = "function", function = new { name = "get_time" } },
    ];

    private static object WeatherRequest(object toolChoice, int seed, bool stream, bool parallel = true) => new
    {
        model = Model,
        messages = new[] { new { role = "user", content = "Weather in Oslo?" } },
        tools = Tools(),
        tool_choice = toolChoice,
        parallel_tool_calls = parallel,
        seed,
        stream,
    };

    private static void AssertValid(JsonSchema schema, string json, string context)
    {
        TestContext.Current.TestOutputHelper?.WriteLine($"{context}: {json}");
        using var document = JsonDocument.Parse(json);
        var result = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"{context}: {json} does not match the schema: {JsonSerializer.Serialize(result)}");
    }
}
