using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>OpenAI's snake_case naming, used only by the OpenAI-compatible endpoints (docs/architecture.md: never mix).</summary>
public static class OpenAiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new LLMTune.Platform.Http.WellFormedJsonElementConverter() },
    };

    public static IResult Result<T>(T value) => Results.Json(value, Options);

    /// <summary>Renames an OpenAPI schema's properties (and required list) from camelCase to snake_case, as they travel.</summary>
    public static void SnakeCaseSchema(Microsoft.OpenApi.OpenApiSchema schema)
    {
        if (schema.Properties is { Count: > 0 } properties)
        {
            var renamed = properties.ToList();
            properties.Clear();
            foreach (var (name, property) in renamed)
            {
                properties[JsonNamingPolicy.SnakeCaseLower.ConvertName(name)] = property;
            }
        }

        if (schema.Required is { Count: > 0 } required)
        {
            var names = required.ToList();
            required.Clear();
            foreach (var name in names)
            {
                required.Add(JsonNamingPolicy.SnakeCaseLower.ConvertName(name));
            }
        }
    }
}

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens)
{
    public static Usage From(Generation.InferenceOutcome outcome) =>
        new(outcome.PromptTokens, outcome.CompletionTokens, outcome.PromptTokens + outcome.CompletionTokens);
}

public sealed class StreamOptionsIn
{
    public bool? IncludeUsage { get; set; }
}

// --- chat completions ---

public sealed class ChatCompletionRequest
{
    public string? Model { get; set; }
    public List<ChatMessageIn>? Messages { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public int? MaxTokens { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public JsonElement? Stop { get; set; }
    public long? Seed { get; set; }
    public bool? Stream { get; set; }
    public StreamOptionsIn? StreamOptions { get; set; }
    public int? N { get; set; }

    /// <summary>Return each output token's log probability (<c>choices[].logprobs.content</c>).</summary>
    public bool? Logprobs { get; set; }

    /// <summary>How many most likely alternatives to return per token (0 to 20); needs <c>logprobs: true</c>.</summary>
    public int? TopLogprobs { get; set; }

    /// <summary>-2 to 2: subtracted once from the logit of every token already in the completion.</summary>
    public float? PresencePenalty { get; set; }

    /// <summary>-2 to 2: subtracted from a token's logit once per time it is already in the completion.</summary>
    public float? FrequencyPenalty { get; set; }

    /// <summary>Token id (as a string) to a bias from -100 (ban) to 100 (force) added to its logit.</summary>
    public Dictionary<string, float>? LogitBias { get; set; }

    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c>; local models enforce JSON by constrained decoding.</summary>
    public ResponseFormatIn? ResponseFormat { get; set; }

    /// <summary>Functions the model may call (at most 128).</summary>
    public List<ToolIn?>? Tools { get; set; }

    /// <summary><c>none</c>, <c>auto</c>, <c>required</c> or <c>{"type": "function", "function": {"name": …}}</c>.</summary>
    public JsonElement? ToolChoice { get; set; }

    /// <summary>Whether several calls may come back in one answer (default true).</summary>
    public bool? ParallelToolCalls { get; set; }

    /// <summary>Everything else the caller sent; checked for features this server does not offer.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed class ChatMessageIn
{
    public string? Role { get; set; }
    public JsonElement? Content { get; set; }
    public string? Name { get; set; }

    /// <summary>On assistant messages: the calls it made.</summary>
    public List<ToolCallIn?>? ToolCalls { get; set; }

    /// <summary>On tool messages: the call this is the result of.</summary>
    public string? ToolCallId { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed record ChatCompletion(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage, string? SystemFingerprint);

public sealed record ChatChoice(int Index, AssistantMessage Message, ChatLogprobs? Logprobs, string FinishReason);

/// <summary>OpenAI's chat log probabilities: one entry per output token.</summary>
public sealed record ChatLogprobs(IReadOnlyList<ChatTokenLogprob> Content, string? Refusal)
{
    public static ChatLogprobs? From(IEnumerable<Engine.Inference.TokenLogprob>? logprobs) =>
        logprobs is null ? null : new ChatLogprobs(logprobs.Select(ChatTokenLogprob.From).ToArray(), null);
}

/// <summary>A token, its log probability, its UTF-8 bytes, and the most likely tokens at its position.</summary>
public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs)
{
    public static ChatTokenLogprob From(Engine.Inference.TokenLogprob logprob) => new(
        logprob.Token, logprob.Logprob, Array.ConvertAll(logprob.Bytes, b => (int)b),
        logprob.Top.Select(t => new ChatTopLogprob(t.Token, t.Logprob, Array.ConvertAll(t.Bytes, b => (int)b))).ToArray());
}

public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

public sealed record AssistantMessage(
    string Role,
    string? Content,
    string? Refusal,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCall>? ToolCalls = null);

/// <summary>A call the model made: <c>function.arguments</c> is the arguments object as JSON text.</summary>
public sealed record ToolCall(string Id, string Type, FunctionCall Function);

public sealed record FunctionCall(string Name, string Arguments);

public sealed record ChatCompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChunkChoice> Choices, Usage? Usage, string? SystemFingerprint);

public sealed record ChunkChoice(int Index, ChunkDelta Delta, ChatLogprobs? Logprobs, string? FinishReason);

public sealed record ChunkDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCallDelta>? ToolCalls = null);

/// <summary>A piece of a streamed call: the first carries id, type and name, later ones more of the arguments.</summary>
public sealed record ToolCallDelta(
    int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type,
    FunctionCallDelta Function);

public sealed record FunctionCallDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Arguments);

// --- structured outputs and tools (requests) ---

public sealed class ResponseFormatIn
{
    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c>.</summary>
    public string? Type { get; set; }

    public JsonSchemaFormatIn? JsonSchema { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed class JsonSchemaFormatIn
{
    /// <summary>1–64 letters, digits, underscores or dashes.</summary>
    public string? Name { get; set; }

    public string? Description { get; set; }

    /// <summary>The JSON schema the answer must match.</summary>
    public JsonElement? Schema { get; set; }

    /// <summary>Local models always decode under the schema, strict or not.</summary>
    public bool? Strict { get; set; }
}

public sealed class ToolIn
{
    /// <summary>Only <c>function</c>.</summary>
    public string? Type { get; set; }

    public FunctionIn? Function { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed class FunctionIn
{
    /// <summary>1–64 letters, digits, underscores or dashes.</summary>
    public string? Name { get; set; }

    public string? Description { get; set; }

    /// <summary>A JSON schema for the arguments object; omitted means no arguments.</summary>
    public JsonElement? Parameters { get; set; }

    public bool? Strict { get; set; }
}

public sealed class ToolCallIn
{
    public string? Id { get; set; }
    public string? Type { get; set; }
    public FunctionCallIn? Function { get; set; }
}

public sealed class FunctionCallIn
{
    public string? Name { get; set; }

    /// <summary>The arguments as JSON text.</summary>
    public string? Arguments { get; set; }
}

// --- completions ---

public sealed class CompletionRequest
{
    public string? Model { get; set; }
    public JsonElement? Prompt { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public int? MaxTokens { get; set; }
    public JsonElement? Stop { get; set; }
    public long? Seed { get; set; }
    public bool? Stream { get; set; }
    public StreamOptionsIn? StreamOptions { get; set; }
    public int? N { get; set; }

    /// <summary>Return each output token's log probability and this many most likely alternatives (0 to 20).</summary>
    public int? Logprobs { get; set; }

    /// <summary>-2 to 2: subtracted once from the logit of every token already in the completion.</summary>
    public float? PresencePenalty { get; set; }

    /// <summary>-2 to 2: subtracted from a token's logit once per time it is already in the completion.</summary>
    public float? FrequencyPenalty { get; set; }

    /// <summary>Token id (as a string) to a bias from -100 (ban) to 100 (force) added to its logit.</summary>
    public Dictionary<string, float>? LogitBias { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed record TextCompletion(
    string Id, string Object, long Created, string Model, IReadOnlyList<TextChoice> Choices, Usage? Usage, string? SystemFingerprint);

public sealed record TextChoice(string Text, int Index, TextLogprobs? Logprobs, string? FinishReason);

/// <summary>
/// The legacy completions' log probabilities: per token its text, log probability, the most likely alternatives (token to
/// log probability) and where it starts in the choice's text.
/// </summary>
public sealed record TextLogprobs(
    IReadOnlyList<string> Tokens, IReadOnlyList<float> TokenLogprobs, IReadOnlyList<Dictionary<string, float>> TopLogprobs, IReadOnlyList<int> TextOffset)
{
    public static TextLogprobs? From(IReadOnlyList<Engine.Inference.TokenLogprob>? logprobs, int startOffset = 0)
    {
        if (logprobs is null)
        {
            return null;
        }

        var offsets = new int[logprobs.Count];
        var offset = startOffset;
        for (var i = 0; i < logprobs.Count; i++)
        {
            offsets[i] = offset;
            offset += logprobs[i].Token.Length;
        }

        return new TextLogprobs(
            logprobs.Select(l => l.Token).ToArray(),
            logprobs.Select(l => l.Logprob).ToArray(),
            logprobs.Select(l => l.Top.GroupBy(t => t.Token).ToDictionary(g => g.Key, g => g.First().Logprob)).ToArray(),
            offsets);
    }
}
