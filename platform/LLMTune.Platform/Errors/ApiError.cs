using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Platform.Errors;

/// <summary>The one error body every endpoint returns (OpenAI's shape, so OpenAI SDKs parse it).</summary>
public sealed record ApiErrorBody([property: JsonPropertyName("error")] ApiErrorDetail Error);

public sealed record ApiErrorDetail(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code,
    [property: JsonPropertyName("requestId")] string? RequestId);

/// <summary>
/// Thrown anywhere below an endpoint to answer with a specific status and code; the error middleware turns it into
/// the error shape. Endpoints can equally return <see cref="ApiErrors"/> results directly.
/// </summary>
public sealed class ApiException(int status, string code, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    public string? Param { get; } = param;
}

public static class ApiErrors
{
    /// <summary>OpenAI's error "type" for a status code.</summary>
    public static string TypeFor(int status) => status switch
    {
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status402PaymentRequired => "insufficient_quota",
        StatusCodes.Status403Forbidden => "permission_error",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    /// <summary>The default code for a status when nothing more specific applies.</summary>
    public static string CodeFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest => "invalid_request",
        StatusCodes.Status401Unauthorized => "invalid_api_key",
        StatusCodes.Status402PaymentRequired => "insufficient_credits",
        StatusCodes.Status403Forbidden => "forbidden",
        StatusCodes.Status404NotFound => "not_found",
        StatusCodes.Status405MethodNotAllowed => "method_not_allowed",
        StatusCodes.Status409Conflict => "conflict",
        StatusCodes.Status413PayloadTooLarge => "payload_too_large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
        StatusCodes.Status429TooManyRequests => "rate_limited",
        StatusCodes.Status502BadGateway => "upstream_error",
        StatusCodes.Status503ServiceUnavailable => "service_unavailable",
        StatusCodes.Status504GatewayTimeout => "upstream_timeout",
        _ => "server_error",
    };

    public static ApiErrorBody Body(HttpContext http, int status, string code, string message, string? param = null) =>
        new(new ApiErrorDetail(message, TypeFor(status), param, code, http.TraceIdentifier));

    public static IResult Result(int status, string code, string message, string? param = null) =>
        new ApiErrorResult(status, code, message, param);

    public static IResult BadRequest(string message, string? param = null, string code = "invalid_parameter") =>
        Result(StatusCodes.Status400BadRequest, code, message, param);

    public static IResult NotFound(string message, string code = "not_found") =>
        Result(StatusCodes.Status404NotFound, code, message);

    public static IResult Conflict(string message, string code = "conflict") =>
        Result(StatusCodes.Status409Conflict, code, message);

    public static IResult Unauthorized(string message, string code = "invalid_api_key") =>
        Result(StatusCodes.Status401Unauthorized, code, message);

    public static Task WriteAsync(HttpContext http, int status, string code, string message, string? param = null)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(Body(http, status, code, message, param), ErrorJson.Options, http.RequestAborted);
    }

    private sealed class ApiErrorResult(int status, string code, string message, string? param) : IResult, IStatusCodeHttpResult
    {
        public int? StatusCode => status;

        public Task ExecuteAsync(HttpContext httpContext) => WriteAsync(httpContext, status, code, message, param);
    }
}

internal static class ErrorJson
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web);
}
