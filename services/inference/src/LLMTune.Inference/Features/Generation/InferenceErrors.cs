using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>The inference API's errors, all <see cref="ApiException"/>s (the platform's one error path).</summary>
public static class InferenceErrors
{
    public static ApiException ModelNotFound(string modelId, string param) => ApiException.NotFound(
        "model_not_found", $"The model '{modelId}' does not exist or you do not have access to it.", param);

    /// <summary>A failure in the middle of a call as the error the client sees; null for a bug (which stays a 500).</summary>
    public static ApiException? MidCall(Exception e) => e switch
    {
        ApiException api => api,
        Engine.Inference.ModelUnloadedException unloaded => new ApiException(StatusCodes.Status503ServiceUnavailable, "model_unavailable",
            $"The model was taken out of service during the request: {unloaded.Message}"),
        _ => null,
    };
}
