using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Errors;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>OpenAI's sampling parameters and the features this server declines, each rejected with a 400 naming the parameter.</summary>
internal static class OpenAiParameters
{
    public const int MaxStopSequences = 4;

    public static InferenceInput Sampling(SamplingParameters sampling, ParameterNames names)
    {
        var (temperature, topP, maxTokens, maxTokensName, stop, seed, n) = (sampling.Temperature, sampling.TopP, sampling.MaxTokens,
            sampling.MaxTokensName, sampling.Stop, sampling.Seed, sampling.N);
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

        if (n is { } choices && choices is < 1 or > GenerationRequest.MaxChoices)
        {
            throw ApiException.Invalid("n", $"n must be between 1 and {GenerationRequest.MaxChoices}.");
        }

        if (sampling.PresencePenalty is { } presence && !(presence is >= -2 and <= 2))
        {
            throw ApiException.Invalid("presence_penalty", "presence_penalty must be between -2 and 2.");
        }

        if (sampling.FrequencyPenalty is { } frequency && !(frequency is >= -2 and <= 2))
        {
            throw ApiException.Invalid("frequency_penalty", "frequency_penalty must be between -2 and 2.");
        }

        if (sampling.TopLogprobs is < 0 or > GenerationRequest.MaxTopLogprobs)
        {
            throw ApiException.Invalid(sampling.TopLogprobsName, $"{sampling.TopLogprobsName} must be between 0 and {GenerationRequest.MaxTopLogprobs}.");
        }

        var generation = new GenerationRequest
        {
            MaxTokens = maxTokens,
            // top_p = 0 keeps only the most likely token: greedy decoding.
            Temperature = topP == 0 ? 0 : temperature ?? 1f,
            TopP = topP is > 0 ? topP.Value : 1f,
            Stop = StopSequences(stop),
            Seed = seed is { } s ? unchecked((uint)s) : null,
            Choices = n ?? 1,
            PresencePenalty = sampling.PresencePenalty ?? 0,
            FrequencyPenalty = sampling.FrequencyPenalty ?? 0,
            LogitBias = LogitBias(sampling.LogitBias),
            TopLogprobs = sampling.TopLogprobs,
        };
        return new InferenceInput(generation, names with { MaxTokens = maxTokensName });
    }

    public const int MaxLogitBiases = 1024;

    /// <summary>Token ids as strings (OpenAI's JSON object keys) to biases in [-100, 100]; ids the vocabulary lacks are refused by the model.</summary>
    private static Dictionary<int, float> LogitBias(Dictionary<string, float>? biases)
    {
        var result = new Dictionary<int, float>();
        if (biases is null)
        {
            return result;
        }

        if (biases.Count > MaxLogitBiases)
        {
            throw ApiException.Invalid("logit_bias", $"logit_bias takes at most {MaxLogitBiases} tokens.");
        }

        foreach (var (key, bias) in biases)
        {
            if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
            {
                throw ApiException.Invalid("logit_bias", $"logit_bias keys must be token ids; '{key}' is not.");
            }

            if (!(bias is >= -100 and <= 100))
            {
                throw ApiException.Invalid("logit_bias", $"logit_bias values must be between -100 and 100; token {key} has {bias}.");
            }

            result[id] = bias;
        }

        return result;
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
                "tools" => !IsNullOrEmpty(value),
                "functions" or "function_call" or "audio" or "prediction" or "web_search_options" or "suffix" => !IsNullOrEmpty(value),
                "tool_choice" => value.ValueKind is not (JsonValueKind.Null or JsonValueKind.String) || value.GetString() is not ("none" or "auto"),
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

/// <summary>The sampling parameters chat and completions share, as the caller sent them (null: not sent).</summary>
internal sealed record SamplingParameters(
    float? Temperature,
    float? TopP,
    int? MaxTokens,
    string MaxTokensName,
    JsonElement? Stop,
    long? Seed,
    int? N,
    float? PresencePenalty,
    float? FrequencyPenalty,
    Dictionary<string, float>? LogitBias,
    int? TopLogprobs,
    string TopLogprobsName);
