using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Upstream;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>
/// <c>POST /v1/embeddings</c> as OpenAI defines it. Upstream models get the body byte for byte (only <c>model</c>
/// replaced) like chat; local models embed with their own hidden states (<see cref="EmbeddingsResponder"/>).
/// </summary>
public sealed class EmbeddingsEndpoint : IEmbeddingsFormat
{
    private static readonly EmbeddingsEndpoint Format = new();

    public JsonSerializerOptions Json => OpenAiJson.Options;

    public EmbeddingParameterNames Names => EmbeddingParameterNames.OpenAi;

    public static async Task<IResult> HandleAsync(HttpContext http, EmbeddingsResponder embeddings)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var body = await JsonBody.ReadBytesAsync(http);
        var request = JsonBody.Parse<EmbeddingsRequest>(body, OpenAiJson.Options);
        return await embeddings.RespondAsync(http,
            new EmbeddingsRequestIn(request.Model, "model", request.Input, request.EncodingFormat, request.Dimensions, startedAt, new UpstreamRequest("embeddings", body)),
            Format);
    }

    public object Response(EmbeddingBatch batch, string encodingFormat, string model, long latencyMs) => new EmbeddingsResponse(
        "list",
        batch.Vectors.Select((v, i) => new EmbeddingItem("embedding", i, LocalEmbeddings.Encode(v, encodingFormat))).ToArray(),
        model,
        new EmbeddingsUsage(batch.PromptTokens, batch.PromptTokens));
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
