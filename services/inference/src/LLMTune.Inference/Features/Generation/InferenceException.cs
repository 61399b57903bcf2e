using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// An inference error with its HTTP status, code, named parameter and optional Retry-After. Endpoints answer these
/// themselves (see <see cref="InferenceErrorFilter"/>) because the platform's exception handler clears headers.
/// </summary>
public sealed class InferenceException(int status, string code, string message, string? param = null, TimeSpan? retryAfter = null)
    : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    public string? Param { get; } = param;

    public TimeSpan? RetryAfter { get; } = retryAfter;

    public static InferenceException ModelNotFound(string modelId, string param) => new(
        StatusCodes.Status404NotFound, "model_not_found",
        $"The model '{modelId}' does not exist or you do not have access to it.", param);

    public static InferenceException Invalid(string param, string message) =>
        new(StatusCodes.Status400BadRequest, "invalid_parameter", message, param);

    public static InferenceException Unsupported(string param, string message) =>
        new(StatusCodes.Status400BadRequest, "unsupported_parameter", message, param);
}

/// <summary>Answers <see cref="InferenceException"/> and upstream failures in the error shape, with Retry-After when due.</summary>
public sealed class InferenceErrorFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (Exception e) when (Translate(e) is { } error && !context.HttpContext.Response.HasStarted)
        {
            return new ErrorResult(error);
        }
    }

    /// <summary>The API error for an exception inference code throws on purpose; null for anything else (a bug: 500).</summary>
    public static InferenceException? Translate(Exception e) => e switch
    {
        InferenceException inference => inference,
        Upstream.UpstreamFailureException upstream => new InferenceException(upstream.Status, upstream.Code, upstream.Message, null, upstream.RetryAfter),
        Engine.Inference.ModelUnloadedException unloaded => new InferenceException(StatusCodes.Status503ServiceUnavailable, "model_unavailable",
            $"The model was taken out of service during the request: {unloaded.Message}"),
        _ => null,
    };

    private sealed class ErrorResult(InferenceException error) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            if (error.RetryAfter is { } retryAfter)
            {
                http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return ApiErrors.WriteAsync(http, error.Status, error.Code, error.Message, error.Param);
        }
    }
}
