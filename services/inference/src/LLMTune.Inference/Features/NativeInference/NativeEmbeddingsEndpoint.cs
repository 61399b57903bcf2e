using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.NativeInference;

/// <summary>The native embeddings request: <c>input</c> as on <c>/v1/embeddings</c>, camelCase options.</summary>
public sealed record NativeEmbeddingsRequest(JsonElement? Input, string? EncodingFormat, int? Dimensions);

/// <summary>One vector per input in input order; <c>tokens</c> the input tokens, <c>latency</c> milliseconds.</summary>
public sealed record NativeEmbeddingsResponse(IReadOnlyList<NativeEmbedding> Data, string Model, int Tokens, long Latency);

/// <summary>A list of floats, or a base64 string (little-endian float32) with <c>encodingFormat: base64</c>.</summary>
public sealed record NativeEmbedding(int Index, object Embedding);

/// <summary>
/// <c>POST /v1/models/{modelId}/embeddings</c>: local models embed themselves; upstream models are asked through their
/// OpenAI <c>/embeddings</c> and the answer is given in this shape. Metered like inference.
/// </summary>
public static class NativeEmbeddingsEndpoint
{
    public static async Task<IResult> HandleAsync(
        HttpContext http, string modelId, JsonSerializerOptions json, InferenceService inference, InferenceResponder responder, UsageMeter meter)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeEmbeddingsRequest>(http, json);
        var caller = InferenceCaller.From(http);
        var inputs = LocalEmbeddings.ParseInput(request.Input, "input"); // the same validation for every kind of model
        var model = await inference.ResolveAsync(modelId, caller.WorkspaceId, "modelId", http.RequestAborted);
        var format = request.EncodingFormat ?? LocalEmbeddings.Float;
        EmbeddingBatch batch;
        if (model is UpstreamServedModel upstream)
        {
            if (format is not (LocalEmbeddings.Float or LocalEmbeddings.Base64))
            {
                throw ApiException.Invalid("encodingFormat", $"encodingFormat must be '{LocalEmbeddings.Float}' or '{LocalEmbeddings.Base64}'.");
            }

            var body = new JsonObject { ["model"] = modelId, ["input"] = JsonNode.Parse(request.Input!.Value.GetRawText()), ["encoding_format"] = "float" };
            if (request.Dimensions is { } dimensions)
            {
                body["dimensions"] = dimensions;
            }

            var (answering, answer) = await responder.StartUpstreamAsync(
                upstream, new UpstreamRequest("embeddings", JsonSerializer.SerializeToUtf8Bytes(body)), stream: false, caller, http.RequestAborted);
            if (answering is UpstreamServedModel relayed)
            {
                using var upstreamAnswer = answer!;
                batch = ReadUpstream(await upstreamAnswer.Content.ReadAsByteArrayAsync(http.RequestAborted), relayed.Id);

                model = relayed;
            }
            else
            {
                (model, batch) = await EmbedLocalAsync((LocalServedModel)answering, request, inputs, http.RequestAborted);
            }
        }
        else
        {
            (model, batch) = await EmbedLocalAsync((LocalServedModel)model, request, inputs, http.RequestAborted);
        }

        var latencyMs = (long)Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
        AccessLog.RecordInference(http, model.Id, batch.PromptTokens, 0);
        http.Response.OnCompleted(() => meter.PublishAsync(caller, new InferenceOutcome(model.Id, "", batch.PromptTokens, 0, InferenceOutcome.Stop), latencyMs, false));
        return Results.Json(new NativeEmbeddingsResponse(
            batch.Vectors.Select((v, i) => new NativeEmbedding(i, LocalEmbeddings.Encode(v, format))).ToArray(), model.Id, batch.PromptTokens, latencyMs), json);
    }

    private static async Task<(ServedModel, EmbeddingBatch)> EmbedLocalAsync(
        LocalServedModel model, NativeEmbeddingsRequest request, IReadOnlyList<EmbeddingInput> inputs, CancellationToken cancellationToken)
    {
        LocalEmbeddings.Format(request.EncodingFormat, request.Dimensions, model, EmbeddingParameterNames.Native);
        return (model, await LocalEmbeddings.EmbedAsync(model, inputs, EmbeddingParameterNames.Native, cancellationToken));
    }

    /// <summary>The vectors (in <c>index</c> order) and prompt tokens of an OpenAI embeddings answer; anything else is a 502.</summary>
    private static EmbeddingBatch ReadUpstream(byte[] answer, string model)
    {
        try
        {
            using var document = JsonDocument.Parse(answer);
            var root = document.RootElement;
            var vectors = root.GetProperty("data").EnumerateArray()
                .OrderBy(item => item.TryGetProperty("index", out var index) ? index.GetInt32() : 0)
                .Select(item => item.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray())
                .ToArray();
            var tokens = root.TryGetProperty("usage", out var usage) && usage.TryGetProperty("prompt_tokens", out var prompt) ? prompt.GetInt32() : 0;
            return new EmbeddingBatch(vectors, tokens);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error", $"The upstream for '{model}' sent an embeddings answer this server cannot read.");
        }
    }
}
