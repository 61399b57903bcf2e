using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Errors;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>OpenAI's sampling parameters and the features this server declines, each rejected with a 400 naming the parameter.</summary>
internal static class OpenAiParameters
{
    public const int MaxStopSequences = 4;

    public static InferenceInput Sampling(float? temperature, float? topP, int? maxTokens, string maxTokensName, JsonElement? stop, long? seed, int? n, ParameterNames names)
    {
        if (temperature is { } t && !(t is >= 0 and <= 2))
        {
            throw ApiException.Invalid("temperature", "temperature must be between 0 and 2.");
        }

        if (topP is { } p && !(p is >= 0 and <= 1))
        {
            throw ApiException.Invalid("top_p", "top_p must be between 0 and 1.");
        }

        if (maxTokens is < 1)
        {
            throw ApiException.Invalid(maxTokensName, $"{maxTokensName} must be at least 1.");
        }

        if (n is { } choices && choices != 1)
        {
            throw ApiException.Unsupported("n", "Only n = 1 is supported: send one request per completion you need.");
        }

        var generation = new GenerationRequest
        {
            MaxTokens = maxTokens,
            // top_p = 0 keeps only the most likely token: greedy decoding.
            Temperature = topP == 0 ? 0 : temperature ?? 1f,
            TopP = topP is > 0 ? topP.Value : 1f,
            Stop = StopSequences(stop),
            Seed = seed is { } s ? unchecked((uint)s) : null,
        };
        return new InferenceInput(generation, names with { MaxTokens = maxTokensName });
    }

    private static IReadOnlyList<string> StopSequences(JsonElement? stop)
    {
        switch (stop)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return [];
            case { ValueKind: JsonValueKind.String } single when single.GetString() is { Length: > 0 } text:
                return [text];
            case { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() <= MaxStopSequences
                && list.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String && s.GetString()!.Length > 0):
                return list.EnumerateArray().Select(s => s.GetString()!).ToList();
            default:
                throw ApiException.Invalid("stop", $"stop must be a non-empty string or a list of up to {MaxStopSequences} non-empty strings.");
        }
    }

    /// <summary>Rejects requests for features this server does not implement; defaults (false, 0, empty) pass.</summary>
    public static void RejectUnsupported(Dictionary<string, JsonElement>? other)
    {
        if (other is null)
        {
            return;
        }

        foreach (var (name, value) in other)
        {
            var asked = name switch
            {
                "tools" or "logit_bias" => !IsNullOrEmpty(value),
                "functions" or "function_call" or "audio" or "prediction" or "web_search_options" or "suffix" => !IsNullOrEmpty(value),
                "tool_choice" => value.ValueKind is not (JsonValueKind.Null or JsonValueKind.String) || value.GetString() is not ("none" or "auto"),
                "logprobs" => value.ValueKind is not (JsonValueKind.Null or JsonValueKind.False) && !(value.ValueKind == JsonValueKind.Number && value.GetDouble() == 0),
                "top_logprobs" or "presence_penalty" or "frequency_penalty" => value.ValueKind == JsonValueKind.Number ? value.GetDouble() != 0 : value.ValueKind != JsonValueKind.Null,
                "echo" => value.ValueKind == JsonValueKind.True,
                "best_of" => value.ValueKind == JsonValueKind.Number ? value.GetDouble() != 1 : value.ValueKind != JsonValueKind.Null,
                "response_format" => value.ValueKind == JsonValueKind.Object
                    && !(value.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "text"),
                "modalities" => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.String || m.GetString() != "text"),
                _ => false, // e.g. user, store, metadata, service_tier: accepted and ignored
            };
            if (asked)
            {
                throw ApiException.Unsupported(name, $"{name} is not supported by this server.");
            }
        }
    }

    private static bool IsNullOrEmpty(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => true,
        JsonValueKind.Array => value.GetArrayLength() == 0,
        JsonValueKind.Object => !value.EnumerateObject().Any(),
        JsonValueKind.String => value.GetString()!.Length == 0,
        _ => false,
    };
}
