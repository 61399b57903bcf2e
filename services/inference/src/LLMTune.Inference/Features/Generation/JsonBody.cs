using System.Text.Json;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>Reads a request body with an endpoint group's own JSON naming (camelCase natively, snake_case for OpenAI).</summary>
internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpContext http, JsonSerializerOptions options) where T : class
    {
        if (!http.Request.HasJsonContentType())
        {
            throw new ApiException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported content type: send application/json.");
        }

        try
        {
            return await JsonSerializer.DeserializeAsync<T>(http.Request.Body, options, http.RequestAborted).ConfigureAwait(false)
                ?? throw new ApiException(StatusCodes.Status400BadRequest, "invalid_request", "The request body must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_json", $"Malformed JSON body: {e.Message}");
        }
    }
}
