using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>
/// <c>POST /v1/embeddings</c> as OpenAI defines it. Upstream models get the body byte for byte (only <c>model</c>
/// replaced) like chat; local models embed with their own hidden states. Metered like inference (prompt tokens).
/// </summary>
public static class EmbeddingsEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, InferenceService inference, InferenceResponder responder, UsageMeter meter)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var body = await JsonBody.ReadBytesAsync(http);
        var request = JsonBody.Parse<EmbeddingsRequest>(body, OpenAiJson.Options);
        var caller = InferenceCaller.From(http);
        var model = await inference.ResolveAsync(request.Model, caller.WorkspaceId, "model", http.RequestAborted);
        if (model is UpstreamServedModel upstream)
        {
            if (await responder.PassThroughAsync(http, upstream, new UpstreamRequest("embeddings", body), stream: false, caller, startedAt) is not { } fallback)
            {
                return Results.Empty;
            }

            model = fallback;
        }

        var local = (LocalServedModel)model;
        var format = LocalEmbeddings.Format(request.EncodingFormat, request.Dimensions, local, EmbeddingParameterNames.OpenAi);
        var inputs = LocalEmbeddings.ParseInput(request.Input, "input");
        var batch = await LocalEmbeddings.EmbedAsync(local, inputs, EmbeddingParameterNames.OpenAi, http.RequestAborted);
        var latencyMs = (long)Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
        AccessLog.RecordInference(http, local.Id, batch.PromptTokens, 0);
        http.Response.OnCompleted(() => meter.PublishAsync(caller, new InferenceOutcome(local.Id, "", batch.PromptTokens, 0, InferenceOutcome.Stop), latencyMs, false));
        return OpenAiJson.Result(new EmbeddingsResponse(
            "list",
            batch.Vectors.Select((v, i) => new EmbeddingItem("embedding", i, LocalEmbeddings.Encode(v, format))).ToArray(),
            local.Id,
            new EmbeddingsUsage(batch.PromptTokens, batch.PromptTokens)));
    }
}

public sealed class EmbeddingsRequest
{
    public string? Model { get; set; }

    /// <summary>A string, a list of strings, a list of token ids, or a list of lists of token ids (up to 2048 inputs).</summary>
    public JsonElement? Input { get; set; }

    /// <summary><c>float</c> (default) or <c>base64</c> (little-endian float32).</summary>
    public string? EncodingFormat { get; set; }

    /// <summary>Local models: only their own embedding width (they cannot shorten vectors); upstream models decide.</summary>
    public int? Dimensions { get; set; }

    public string? User { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Other { get; set; }
}

public sealed record EmbeddingsResponse(string Object, IReadOnlyList<EmbeddingItem> Data, string Model, EmbeddingsUsage Usage);

/// <summary>One input's vector: a list of floats, or a base64 string with <c>encoding_format: base64</c>.</summary>
public sealed record EmbeddingItem(string Object, int Index, object Embedding);

public sealed record EmbeddingsUsage(int PromptTokens, int TotalTokens);
