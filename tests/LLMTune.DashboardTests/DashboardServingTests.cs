using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using LLMTune.Gateway.Dashboard;
using LLMTune.Testing;

namespace LLMTune.DashboardTests;

/// <summary>One host for the serving checks (no browser needed).</summary>
public sealed class ServingHostFixture : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await TestHost.StartAsync();

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>The gateway serves the dashboard beside the API without changing the API, and the pages use only documented endpoints.</summary>
public sealed partial class DashboardServingTests(ServingHostFixture fixture) : IClassFixture<ServingHostFixture>
{
    [Fact]
    public async Task The_root_serves_the_dashboard_with_a_strict_content_security_policy_and_no_key()
    {
        using var client = fixture.Host.Client();
        var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var csp = string.Join(" ", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("/dashboard/app.js", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var script = await client.GetAsync("/dashboard/pages/keys.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Theory]
    [InlineData("/dashboard/missing.js", HttpStatusCode.NotFound, "not_found")]
    [InlineData("/dashboard/../appsettings.json", HttpStatusCode.NotFound, "not_found")]
    [InlineData("/v1/no-such-thing", HttpStatusCode.NotFound, "not_found")]
    [InlineData("/no-such-page", HttpStatusCode.NotFound, "not_found")]
    public async Task Unknown_paths_still_answer_in_the_error_shape(string path, HttpStatusCode status, string code)
    {
        using var client = fixture.Host.Client(fixture.Host.InitialKey);
        var response = await client.GetAsync(path);
        Assert.Equal(status, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(code, body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_api_still_needs_a_key_next_to_the_dashboard()
    {
        using var client = fixture.Host.Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/keys")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/openapi/v1.json")).StatusCode);
    }

    [Fact]
    public async Task Every_api_call_in_the_pages_is_an_operation_of_the_openapi_document()
    {
        using var client = fixture.Host.Client();
        var document = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var operations = document.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => (Path: p.Name, Method: m.Name.ToUpperInvariant())))
            .ToList();

        var scripts = DashboardEndpoints.FileNames.Where(f => f.EndsWith(".js", StringComparison.Ordinal)).ToList();
        Assert.Contains("pages/keys.js", scripts);
        var calls = new List<(string File, string Method, string Path)>();
        foreach (var file in scripts)
        {
            var source = await client.GetStringAsync($"/dashboard/{file}");
            var found = ApiCall().Matches(source)
                .Select(m => (file, Method(m), Normalize(m.Groups["path"].Value)))
                .ToList();
            // Every API path literal in the file is the path of one of these calls, so none escapes the check.
            Assert.Equal(PathLiteral().Matches(source).Count, found.Count);
            if (file != "api.js")
            {
                Assert.DoesNotContain("fetch(", source, StringComparison.Ordinal);
            }

            calls.AddRange(found);
        }

        Assert.True(calls.Count >= 30, $"only {calls.Count} API calls found: the scan no longer recognises the pages' calls");
        var undocumented = calls.Where(c => !operations.Any(o => o.Method == c.Method && Matches(o.Path, c.Path))).ToList();
        Assert.True(undocumented.Count == 0, "not in /openapi/v1.json: " + string.Join(", ", undocumented.Select(c => $"{c.Method} {c.Path} ({c.File})")));
    }

    private static string Method(Match call) => call.Groups["function"].Value switch
    {
        "download" => "GET",
        "stream" => "POST",
        _ => call.Groups["method"].Value,
    };

    /// <summary><c>/v1/fine-tune/${seg(id)}/events?limit=100</c> → <c>/v1/fine-tune/{}/events</c>.</summary>
    private static string Normalize(string path) => Interpolation().Replace(path.Split('?')[0], "{}");

    private static bool Matches(string documented, string called)
    {
        var expected = documented.Split('/');
        var actual = called.Split('/');
        return expected.Length == actual.Length && expected.Zip(actual).All(pair =>
            pair.First.StartsWith('{') ? pair.Second.Length > 0 : pair.First == pair.Second);
    }

    [GeneratedRegex("""(?<function>\bapi|\bdownload|\bstream)\(\s*(?:'(?<method>GET|POST|PUT|PATCH|DELETE)'\s*,\s*)?(?<quote>[`'])(?<path>/(?:v1|admin)/[^`']*)\k<quote>""")]
    private static partial Regex ApiCall();

    [GeneratedRegex("""[`'"]/(?:v1|admin)/""")]
    private static partial Regex PathLiteral();

    [GeneratedRegex(@"\$\{[^}]*\}")]
    private static partial Regex Interpolation();
}
