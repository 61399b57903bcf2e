using System.Globalization;
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
/// The one way to answer with an error: throw it anywhere below an endpoint (handlers, services, validators) and the
/// platform's exception handler writes the error shape, <see cref="RetryAfter"/> and any extra <see cref="Headers"/>
/// (<c>x-ratelimit-*</c>). A stream that has already started writes <see cref="Body"/> as its last event instead.
/// </summary>
public class ApiException(int status, string code, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    public string? Param { get; } = param;

    /// <summary>Sent as <c>Retry-After</c> (whole seconds, at least 1).</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Extra response headers, e.g. rate-limit state.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    public static ApiException Invalid(string param, string message, string code = "invalid_parameter") =>
        new(StatusCodes.Status400BadRequest, code, message, param);

    public static ApiException Unsupported(string param, string message) =>
        new(StatusCodes.Status400BadRequest, "unsupported_parameter", message, param);

    public static ApiException NotFound(string code, string message, string? param = null) =>
        new(StatusCodes.Status404NotFound, code, message, param);

    public static ApiException Conflict(string code, string message) =>
        new(StatusCodes.Status409Conflict, code, message);

    public ApiErrorBody Body(HttpContext http) => ApiErrors.Body(http, Status, Code, Message, Param);

    /// <summary>Writes status, headers and body (the platform's exception handler calls this; nothing else should).</summary>
    public Task WriteAsync(HttpContext http)
    {
        foreach (var (name, value) in Headers)
        {
            http.Response.Headers[name] = value;
        }

        if (RetryAfter is { } retryAfter)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        return ApiErrors.WriteAsync(http, Status, Code, Message, Param);
    }
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

    /// <summary>For middleware and authentication handlers that answer before an endpoint runs.</summary>
    public static Task WriteAsync(HttpContext http, int status, string code, string message, string? param = null)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(Body(http, status, code, message, param), ErrorJson.Options, http.RequestAborted);
    }
}

internal static class ErrorJson
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web);
}
