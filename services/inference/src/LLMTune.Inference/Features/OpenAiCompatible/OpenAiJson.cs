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

public sealed record ChatChoice(int Index, AssistantMessage Message, object? Logprobs, string FinishReason);

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

public sealed record ChunkChoice(int Index, ChunkDelta Delta, object? Logprobs, string? FinishReason);

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

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed record TextCompletion(
    string Id, string Object, long Created, string Model, IReadOnlyList<TextChoice> Choices, Usage? Usage, string? SystemFingerprint);

public sealed record TextChoice(string Text, int Index, object? Logprobs, string? FinishReason);
