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

    /// <summary>Everything else the caller sent; checked for features this server does not offer.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed class ChatMessageIn
{
    public string? Role { get; set; }
    public JsonElement? Content { get; set; }
    public string? Name { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed record ChatCompletion(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage, string? SystemFingerprint);

public sealed record ChatChoice(int Index, AssistantMessage Message, object? Logprobs, string FinishReason);

public sealed record AssistantMessage(string Role, string Content, string? Refusal);

public sealed record ChatCompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChunkChoice> Choices, Usage? Usage, string? SystemFingerprint);

public sealed record ChunkChoice(int Index, ChunkDelta Delta, object? Logprobs, string? FinishReason);

public sealed record ChunkDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

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
