using System.Text.Json;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>Reads a request body with an endpoint group's own JSON naming (camelCase natively, snake_case for OpenAI).</summary>
internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpContext http, JsonSerializerOptions options) where T : class =>
        Parse<T>(await ReadBytesAsync(http), options);

    /// <summary>The raw body (bounded by <c>Http:MaxRequestBodyBytes</c>), for endpoints that may pass it on as it is.</summary>
    public static async Task<ReadOnlyMemory<byte>> ReadBytesAsync(HttpContext http)
    {
        if (!http.Request.HasJsonContentType())
        {
            throw new ApiException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported content type: send application/json.");
        }

        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, http.RequestAborted).ConfigureAwait(false);
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    public static T Parse<T>(ReadOnlyMemory<byte> body, JsonSerializerOptions options) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(body.Span, options)
                ?? throw new ApiException(StatusCodes.Status400BadRequest, "invalid_request", "The request body must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_json", $"Malformed JSON body: {e.Message}");
        }
    }
}
