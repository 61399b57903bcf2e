using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Embeddings;

/// <summary>How one API spells its embeddings answer (OpenAI's list or the native camelCase shape) and its parameters in errors.</summary>
public interface IEmbeddingsFormat
{
    JsonSerializerOptions Json { get; }

    EmbeddingParameterNames Names { get; }

    object Response(EmbeddingBatch batch, string encodingFormat, string model, long latencyMs);
}

/// <summary>
/// One embeddings request as an endpoint hands it over: the model it names (and that parameter's name), the input and
/// output options, and for <c>/v1/embeddings</c> the raw body an upstream model receives as is (without it, an upstream
/// is asked through its OpenAI <c>/embeddings</c> and the vectors are read back).
/// </summary>
public sealed record EmbeddingsRequestIn(
    string? ModelId, string ModelParam, JsonElement? Input, string? EncodingFormat, int? Dimensions, long StartedAt, UpstreamRequest? Upstream = null);

/// <summary>
/// The one path from an embeddings request to its answer, for both APIs (as <see cref="InferenceResponder"/> is for
/// generation): resolve the model, pass a raw body through to an upstream or ask it, or embed on a local model
/// (fallbacks take over from an unavailable upstream), meter the input tokens and answer in the endpoint's format.
/// </summary>
public sealed class EmbeddingsResponder(InferenceService inference, InferenceResponder responder, UsageMeter meter)
{
    public async Task<IResult> RespondAsync(HttpContext http, EmbeddingsRequestIn request, IEmbeddingsFormat format)
    {
        var caller = InferenceCaller.From(http);
        // Without a raw body to pass through, the input is checked the same way for every kind of model.
        var inputs = request.Upstream is null ? LocalEmbeddings.ParseInput(request.Input, format.Names.Input) : null;
        var model = await inference.ResolveAsync(request.ModelId, caller.WorkspaceId, request.ModelParam, http.RequestAborted);
        EmbeddingBatch? batch = null;
        var encoding = request.EncodingFormat ?? LocalEmbeddings.Float;
        if (model is UpstreamServedModel upstream)
        {
            if (request.Upstream is { } raw)
            {
                if (await responder.PassThroughAsync(http, upstream, raw, stream: false, caller, request.StartedAt) is not { } fallback)
                {
                    return Results.Empty;
                }

                model = fallback;
            }
            else
            {
                (model, batch) = await AskUpstreamAsync(upstream, request, encoding, format.Names, caller, http.RequestAborted);
            }
        }

        if (batch is null)
        {
            var local = (LocalServedModel)model;
            encoding = LocalEmbeddings.Format(request.EncodingFormat, request.Dimensions, local, format.Names);
            inputs ??= LocalEmbeddings.ParseInput(request.Input, format.Names.Input);
            batch = await LocalEmbeddings.EmbedAsync(local, inputs, format.Names, http.RequestAborted);
        }

        var latencyMs = (long)System.Diagnostics.Stopwatch.GetElapsedTime(request.StartedAt).TotalMilliseconds;
        AccessLog.RecordInference(http, model.Id, batch.PromptTokens, 0);
        http.Response.OnCompleted(() => meter.PublishAfterResponse(caller, new InferenceOutcome(model.Id, "", batch.PromptTokens, 0, InferenceOutcome.Stop), latencyMs, false));
        return Results.Json(format.Response(batch, encoding, model.Id, latencyMs), format.Json);
    }

    /// <summary>The vectors from an upstream's OpenAI <c>/embeddings</c>, or (batch null) the local fallback that must embed instead.</summary>
    private async Task<(ServedModel Model, EmbeddingBatch? Batch)> AskUpstreamAsync(
        UpstreamServedModel upstream, EmbeddingsRequestIn request, string encoding, EmbeddingParameterNames names, InferenceCaller caller, CancellationToken cancellationToken)
    {
        if (encoding is not (LocalEmbeddings.Float or LocalEmbeddings.Base64))
        {
            throw ApiException.Invalid(names.EncodingFormat, $"{names.EncodingFormat} must be '{LocalEmbeddings.Float}' or '{LocalEmbeddings.Base64}'.");
        }

        var body = new JsonObject { ["model"] = upstream.Id, ["input"] = JsonNode.Parse(request.Input!.Value.GetRawText()), ["encoding_format"] = LocalEmbeddings.Float };
        if (request.Dimensions is { } dimensions)
        {
            body["dimensions"] = dimensions;
        }

        var (answering, answer) = await responder.StartUpstreamAsync(
            upstream, new UpstreamRequest("embeddings", JsonSerializer.SerializeToUtf8Bytes(body)), stream: false, caller, cancellationToken);
        if (answering is not UpstreamServedModel relayed)
        {
            return (answering, null);
        }

        using var upstreamAnswer = answer!;
        return (relayed, ReadUpstream(await upstreamAnswer.Content.ReadAsByteArrayAsync(cancellationToken), relayed.Id));
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
