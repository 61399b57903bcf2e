using System.Diagnostics;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using HttpJsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace LLMTune.Inference.Features.NativeInference;

/// <summary>The seed's request: <c>prompt</c> required; <c>modelId</c> only on the playground route.</summary>
public sealed record NativeInferenceRequest(
    string? Prompt,
    float? Temperature,
    int? MaxTokens,
    float? TopP,
    JsonElement? Metadata,
    bool? Stream,
    string? ModelId);

/// <summary>The seed's response: <c>tokens</c> are the completion's tokens, <c>latency</c> milliseconds.</summary>
public sealed record NativeInferenceResponse(string Text, int Tokens, string Model, long Latency, JsonElement? Metadata);

/// <summary>One streamed text piece (<c>event: delta</c>).</summary>
public sealed record NativeDelta(string Delta);

/// <summary>The last streamed event (<c>event: done</c>): the whole text, usage, latency and why it ended.</summary>
public sealed record NativeDone(string Text, int Tokens, string Model, long Latency, string FinishReason, JsonElement? Metadata);

/// <summary><c>POST /v1/models/{modelId}/inference</c> and <c>POST /v1/playground/inference</c>, camelCase as the seed.</summary>
public static class NativeInferenceEndpoints
{
    public const float DefaultTemperature = 0.7f;
    private const string InferenceSuffix = "/inference";
    private const string EmbeddingsSuffix = "/embeddings";

    /// <summary>
    /// Model ids contain slashes (<c>meta-llama/Llama-3.3-70B-Instruct</c>), so the route is a catch-all ending in
    /// /inference or /embeddings.
    /// </summary>
    public static async Task<IResult> ModelRouteAsync(
        string path, HttpContext http, InferenceResponder responder, EmbeddingsResponder embeddings, IOptions<HttpJsonOptions> json)
    {
        var decoded = Uri.UnescapeDataString(path);
        if (decoded.EndsWith(EmbeddingsSuffix, StringComparison.Ordinal) && decoded.Length > EmbeddingsSuffix.Length)
        {
            return await NativeEmbeddingsEndpoint.HandleAsync(http, decoded[..^EmbeddingsSuffix.Length], json.Value.SerializerOptions, embeddings);
        }

        if (!decoded.EndsWith(InferenceSuffix, StringComparison.Ordinal) || decoded.Length == InferenceSuffix.Length)
        {
            throw ApiException.NotFound("not_found", $"No route matches {http.Request.Method} {http.Request.Path}.");
        }

        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeInferenceRequest>(http, json.Value.SerializerOptions);
        return await RunAsync(http, decoded[..^InferenceSuffix.Length], request, startedAt, responder, json.Value.SerializerOptions);
    }

    public static async Task<IResult> PlaygroundAsync(HttpContext http, InferenceResponder responder, IOptions<HttpJsonOptions> json)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeInferenceRequest>(http, json.Value.SerializerOptions);
        return await RunAsync(http, request.ModelId, request, startedAt, responder, json.Value.SerializerOptions);
    }

    private static Task<IResult> RunAsync(
        HttpContext http, string? modelId, NativeInferenceRequest request, long startedAt, InferenceResponder responder, JsonSerializerOptions json)
    {
        var input = Validate(request); // the native API validates the same for every kind of model
        return responder.RespondAsync(
            http, new InferenceRequest(modelId, "modelId", () => input, request.Stream == true, startedAt), new NativeFormat(json, request.Metadata));
    }

    private static InferenceInput Validate(NativeInferenceRequest request)
    {
        if (string.IsNullOrEmpty(request.Prompt))
        {
            throw ApiException.Invalid("prompt", "prompt is required and must be a non-empty string.");
        }

        if (request.Temperature is { } temperature && !(temperature is >= 0 and <= 2))
        {
            throw ApiException.Invalid("temperature", "temperature must be between 0 and 2.");
        }

        if (request.TopP is { } topP && !(topP is > 0 and <= 1))
        {
            throw ApiException.Invalid("topP", "topP must be greater than 0 and at most 1.");
        }

        if (request.MaxTokens is < 1)
        {
            throw ApiException.Invalid("maxTokens", "maxTokens must be at least 1.");
        }

        if (request.Metadata is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
        {
            throw ApiException.Invalid("metadata", "metadata must be a JSON object.");
        }

        return new InferenceInput(
            new GenerationRequest
            {
                Prompt = request.Prompt,
                MaxTokens = request.MaxTokens,
                Temperature = request.Temperature ?? DefaultTemperature,
                TopP = request.TopP ?? 1f,
            },
            ParameterNames.Native,
            PromptAsUserTurn: true);
    }
}

/// <summary>The seed's answer: one JSON object, or <c>event: delta</c> pieces and a final <c>event: done</c>.</summary>
internal sealed class NativeFormat(JsonSerializerOptions json, JsonElement? metadata) : IInferenceFormat
{
    public JsonSerializerOptions Json => json;

    public object Response(InferenceOutcome outcome, long latencyMs) =>
        new NativeInferenceResponse(outcome.Text, outcome.CompletionTokens, outcome.Model, latencyMs, metadata);

    public Task StreamStartAsync(HttpResponse response, string model) => Task.CompletedTask;

    public Task StreamDeltaAsync(HttpResponse response, string model, ModelDelta delta) =>
        ServerSentEvents.WriteAsync(response, new NativeDelta(delta.Text), json, "delta", flush: false);

    public Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs) =>
        ServerSentEvents.WriteAsync(response,
            new NativeDone(outcome.Text, outcome.CompletionTokens, outcome.Model, latencyMs, outcome.FinishReason, metadata), json, "done");

    public Task StreamErrorAsync(HttpResponse response, ApiErrorBody error) => ServerSentEvents.WriteAsync(response, error, json, "error");
}
