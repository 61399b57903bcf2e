using System.Collections.Frozen;
using System.Reflection;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.StaticFiles;

namespace LLMTune.Gateway.Dashboard;

/// <summary>
/// The web dashboard: static files embedded in this assembly (Dashboard/wwwroot), served at <c>/</c> and
/// <c>/dashboard/…</c>. It is a client of the public API only, so it needs no server code beyond serving files.
/// </summary>
public static class DashboardEndpoints
{
    private const string ResourcePrefix = "dashboard/";

    // Scripts only from this origin (no inline script, no eval), so an injected string cannot run; no framing.
    private const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private static readonly Lazy<FrozenDictionary<string, byte[]>> Files = new(LoadFiles);
    private static readonly FileExtensionContentTypeProvider ContentTypes = new();

    /// <summary>The embedded file names, relative to wwwroot (e.g. <c>index.html</c>, <c>pages/keys.js</c>).</summary>
    public static IReadOnlyCollection<string> FileNames => Files.Value.Keys;

    public static void MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", (HttpContext http) => Serve(http, "index.html")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/dashboard/{**file}", (string file, HttpContext http) => Serve(http, file)).AllowAnonymous().ExcludeFromDescription();
    }

    private static IResult Serve(HttpContext http, string file)
    {
        if (!Files.Value.TryGetValue(file, out var content))
        {
            throw ApiException.NotFound("not_found", $"No route matches {http.Request.Method} {http.Request.Path}.");
        }

        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        // Small files that change with each release: revalidate every time rather than serve a stale mix of modules.
        headers.CacheControl = "no-cache";
        var contentType = ContentTypes.TryGetContentType(file, out var type) ? type : "application/octet-stream";
        if (contentType.StartsWith("text/", StringComparison.Ordinal) || contentType == "application/javascript")
        {
            contentType += "; charset=utf-8";
        }

        return Results.Bytes(content, contentType);
    }

    private static FrozenDictionary<string, byte[]> LoadFiles()
    {
        var assembly = typeof(DashboardEndpoints).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .ToFrozenDictionary(name => name[ResourcePrefix.Length..], name => Read(assembly, name), StringComparer.Ordinal);
    }

    private static byte[] Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
