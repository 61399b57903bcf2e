using System.Diagnostics;
using System.Text.Json;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
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
/// OpenAI <c>/embeddings</c> and the answer is given in this shape (<see cref="EmbeddingsResponder"/>).
/// </summary>
public sealed class NativeEmbeddingsEndpoint(JsonSerializerOptions json) : IEmbeddingsFormat
{
    public JsonSerializerOptions Json => json;

    public EmbeddingParameterNames Names => EmbeddingParameterNames.Native;

    public static async Task<IResult> HandleAsync(HttpContext http, string modelId, JsonSerializerOptions json, EmbeddingsResponder embeddings)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<NativeEmbeddingsRequest>(http, json);
        return await embeddings.RespondAsync(http,
            new EmbeddingsRequestIn(modelId, "modelId", request.Input, request.EncodingFormat, request.Dimensions, startedAt), new NativeEmbeddingsEndpoint(json));
    }

    public object Response(EmbeddingBatch batch, string encodingFormat, string model, long latencyMs) => new NativeEmbeddingsResponse(
        batch.Vectors.Select((v, i) => new NativeEmbedding(i, LocalEmbeddings.Encode(v, encodingFormat))).ToArray(), model, batch.PromptTokens, latencyMs);
}
