using System.Text.Json;
using LLMTune.Platform.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LLMTune.Platform.Errors;

/// <summary>Turns every failure (exceptions, bad JSON, unknown routes, empty error responses) into the error shape.</summary>
public static class ErrorHandling
{
    public static IServiceCollection AddErrorShape(this IServiceCollection services)
    {
        // Model-binding and JSON failures throw BadHttpRequestException so the handler below can name the problem.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddExceptionHandler<ApiExceptionHandler>();
        services.AddProblemDetails();
        return services;
    }

    public static IApplicationBuilder UseErrorShape(this IApplicationBuilder app)
    {
        app.UseExceptionHandler();
        // Anything that ends with an error status and no body (unknown route, 405, 415, auth challenges) gets the shape.
        app.UseStatusCodePages(context =>
        {
            var http = context.HttpContext;
            var status = http.Response.StatusCode;
            var message = status switch
            {
                StatusCodes.Status404NotFound => $"No route matches {http.Request.Method} {http.Request.Path}.",
                StatusCodes.Status405MethodNotAllowed => $"Method {http.Request.Method} is not allowed on {http.Request.Path}.",
                StatusCodes.Status415UnsupportedMediaType => UnsupportedContentType(http),
                StatusCodes.Status401Unauthorized => "Missing or invalid API key.",
                _ => ReasonPhrase(status),
            };
            return ApiErrors.WriteAsync(http, status, ApiErrors.CodeFor(status), message);
        });
        return app;
    }

    /// <summary>Names what the operation takes (routing knows it from the endpoint's declared request body).</summary>
    private static string UnsupportedContentType(HttpContext http)
    {
        var accepted = http.GetEndpoint()?.Metadata.GetOrderedMetadata<Microsoft.AspNetCore.Http.Metadata.IAcceptsMetadata>()
            .SelectMany(a => a.ContentTypes).Distinct().ToList();
        return accepted is { Count: > 0 }
            ? $"Unsupported content type: send {string.Join(" or ", accepted)}."
            : $"Unsupported content type '{http.Request.ContentType}' for {http.Request.Method} {http.Request.Path}: /openapi/v1.json names what each operation takes.";
    }

    private static string ReasonPhrase(int status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : $"HTTP {status}";

    private sealed class ApiExceptionHandler(ILogger<ApiExceptionHandler> logger) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
        {
            if (http.Response.HasStarted)
            {
                return false;
            }

            switch (exception)
            {
                case ApiException api:
                    await api.WriteAsync(http);
                    return true;
                case BadHttpRequestException bad:
                    await ApiErrors.WriteAsync(http, bad.StatusCode, CodeForBadRequest(bad), DescribeBadRequest(bad));
                    return true;
                case StoreUnavailableException unavailable:
                    logger.LogError(unavailable, "Store unavailable for {Method} {Path}", http.Request.Method, http.Request.Path);
                    await new ApiException(StatusCodes.Status503ServiceUnavailable, "store_unavailable",
                        "The service cannot store data right now; nothing was changed. Retry shortly.")
                    { RetryAfter = TimeSpan.FromSeconds(5) }.WriteAsync(http);
                    return true;
                case OperationCanceledException when http.RequestAborted.IsCancellationRequested:
                    // The client went away; nobody is left to read an answer.
                    http.Response.StatusCode = 499;
                    return true;
                default:
                    logger.LogError(exception, "Unhandled exception for {Method} {Path}", http.Request.Method, http.Request.Path);
                    await ApiErrors.WriteAsync(http, StatusCodes.Status500InternalServerError, "server_error",
                        $"Unexpected error. Quote request id {http.TraceIdentifier} when reporting it.");
                    return true;
            }
        }

        private static string CodeForBadRequest(BadHttpRequestException bad) => bad.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => "payload_too_large",
            StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
            _ => bad.InnerException is JsonException ? "invalid_json" : "invalid_request",
        };

        private static string DescribeBadRequest(BadHttpRequestException bad) => bad.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => "Request body too large.",
            StatusCodes.Status415UnsupportedMediaType => "Unsupported content type: send application/json.",
            _ when bad.InnerException is JsonException json => $"Malformed JSON body: {json.Message}",
            _ => bad.Message,
        };
    }
}
