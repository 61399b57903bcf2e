using System.Diagnostics;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Identity;
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

    /// <summary>Model ids contain slashes (<c>meta-llama/Llama-3.3-70B-Instruct</c>), so the route is a catch-all ending in /inference.</summary>
    public static async Task<IResult> ModelRouteAsync(string path, HttpContext http, InferenceService inference, UsageMeter meter, IOptions<HttpJsonOptions> json)
    {
        var decoded = Uri.UnescapeDataString(path);
        if (!decoded.EndsWith(InferenceSuffix, StringComparison.Ordinal) || decoded.Length == InferenceSuffix.Length)
        {
            throw new InferenceException(StatusCodes.Status404NotFound, "not_found", $"No route matches {http.Request.Method} {http.Request.Path}.");
        }

        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeInferenceRequest>(http, json.Value.SerializerOptions);
        return await RunAsync(http, decoded[..^InferenceSuffix.Length], "modelId", request, startedAt, inference, meter, json.Value.SerializerOptions);
    }

    public static async Task<IResult> PlaygroundAsync(HttpContext http, InferenceService inference, UsageMeter meter, IOptions<HttpJsonOptions> json)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeInferenceRequest>(http, json.Value.SerializerOptions);
        return await RunAsync(http, request.ModelId, "modelId", request, startedAt, inference, meter, json.Value.SerializerOptions);
    }

    private static async Task<IResult> RunAsync(
        HttpContext http, string? modelId, string modelParam, NativeInferenceRequest request, long startedAt,
        InferenceService inference, UsageMeter meter, JsonSerializerOptions json)
    {
        var (prompt, sampling) = Validate(request);
        var model = await inference.ResolveAsync(modelId, http.User.WorkspaceIdOf(), modelParam, http.RequestAborted);
        var input = sampling with
        {
            Generation = sampling.Generation with
            {
                // Instruct models answer a prompt as a user turn; base models continue it.
                Messages = InferenceService.PrefersChat(model) ? [ChatMessage.User(prompt)] : null,
                Prompt = InferenceService.PrefersChat(model) ? null : prompt,
            },
        };
        var stream = request.Stream == true;
        var call = await inference.StartAsync(model, input, stream, http);
        await using var session = meter.Begin(http, call, startedAt, stream);
        if (!stream)
        {
            var outcome = await call.CompleteAsync(http.RequestAborted);
            return Results.Json(new NativeInferenceResponse(outcome.Text, outcome.CompletionTokens, outcome.Model, session.ElapsedMs, request.Metadata), json);
        }

        await ServerSentEvents.StartAsync(http.Response);
        await ServerSentEvents.RelayAsync(
            http,
            call,
            delta => ServerSentEvents.WriteAsync(http.Response, new NativeDelta(delta), json, "delta", flush: false),
            outcome => ServerSentEvents.WriteAsync(http.Response,
                new NativeDone(outcome.Text, outcome.CompletionTokens, outcome.Model, session.ElapsedMs, outcome.FinishReason, request.Metadata), json, "done"),
            error => ServerSentEvents.WriteAsync(http.Response, ServerSentEvents.ErrorBody(http, error), json, "error"));
        return Results.Empty;
    }

    private static (string Prompt, InferenceInput Sampling) Validate(NativeInferenceRequest request)
    {
        if (string.IsNullOrEmpty(request.Prompt))
        {
            throw InferenceException.Invalid("prompt", "prompt is required and must be a non-empty string.");
        }

        if (request.Temperature is { } temperature && !(temperature is >= 0 and <= 2))
        {
            throw InferenceException.Invalid("temperature", "temperature must be between 0 and 2.");
        }

        if (request.TopP is { } topP && !(topP is > 0 and <= 1))
        {
            throw InferenceException.Invalid("topP", "topP must be greater than 0 and at most 1.");
        }

        if (request.MaxTokens is < 1)
        {
            throw InferenceException.Invalid("maxTokens", "maxTokens must be at least 1.");
        }

        if (request.Metadata is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
        {
            throw InferenceException.Invalid("metadata", "metadata must be a JSON object.");
        }

        return (request.Prompt, new InferenceInput(
            new GenerationRequest
            {
                MaxTokens = request.MaxTokens,
                Temperature = request.Temperature ?? DefaultTemperature,
                TopP = request.TopP ?? 1f,
            },
            ParameterNames.Native));
    }
}
