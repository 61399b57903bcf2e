using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Platform.Http;

/// <summary>Stamps every request with <c>x-request-id</c>: the client's when well-formed, else a new <c>req_…</c>.</summary>
public sealed partial class RequestIdMiddleware(RequestDelegate next)
{
    public const string Header = "x-request-id";

    public Task InvokeAsync(HttpContext http)
    {
        var incoming = http.Request.Headers[Header].ToString();
        var requestId = WellFormed().IsMatch(incoming) ? incoming : NewId("req");
        http.TraceIdentifier = requestId;
        // On the request too: the gateway's proxy forwards it, so a proxied service's errors carry the same id.
        http.Request.Headers[Header] = requestId;
        http.Response.OnStarting(() =>
        {
            http.Response.Headers[Header] = requestId;
            return Task.CompletedTask;
        });
        return next(http);
    }

    /// <summary>A readable prefix and 24 random base62 characters, e.g. <c>job_4fQ…</c>.</summary>
    public static string NewId(string prefix) => $"{prefix}_{Base62.Random(24)}";

    [GeneratedRegex("^[A-Za-z0-9._:-]{8,128}$")]
    private static partial Regex WellFormed();
}

public static class Base62
{
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>Cryptographically random base62 text (each character carries log2(62) ≈ 5.95 bits).</summary>
    public static string Random(int length) => RandomNumberGenerator.GetString(Alphabet, length);
}
