using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Claims;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using LLMTune.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

// Gateway overhead on loopback, one run: a cheap endpoint called (a) directly on a split-mode service, (b) through the
// gateway's bare proxy (an anonymous YARP route: no key check, no limits) and (c) through the gateway as customers use
// it (API key check + billing admission: plan, counter reservations in the store, rate-limit headers + YARP), at the
// same fixed concurrency. "Added latency" is (c) - (b): what authentication and limits cost per request.
var concurrency = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 8;
var seconds = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 10;
const string secret = "internal-secret-for-bench-0123456789";

await using var service = await ModuleHost.StartAsync([new PingModule()], new Dictionary<string, string?>
{
    ["Internal:Secret"] = secret,
    ["Serilog:MinimumLevel:Default"] = "Error",
    ["Serilog:MinimumLevel:Override:Serilog.AspNetCore.RequestLoggingMiddleware"] = "Error",
});
await using var gateway = await TestHost.StartAsync("gateway", new Dictionary<string, string?>
{
    ["Storage:Provider"] = "LiteDb",
    ["Bus:Transport"] = "InMemory",
    ["Internal:Secret"] = secret,
    ["ReverseProxy:Clusters:inference:Destinations:inference-1:Address"] = service.Address.ToString(),
    ["ReverseProxy:Routes:bench:ClusterId"] = "inference",
    ["ReverseProxy:Routes:bench:Match:Path"] = "/v1/ping",
    ["ReverseProxy:Routes:bare:ClusterId"] = "inference",
    ["ReverseProxy:Routes:bare:Match:Path"] = "/bare/ping",
    ["ReverseProxy:Routes:bare:AuthorizationPolicy"] = "anonymous",
    // Limits high enough never to refuse, so every request does the full admission work.
    ["Billing:Plans:Scale:RequestsPerMinute"] = "1000000000",
    ["Billing:Plans:Scale:RequestsPerMinutePerKey"] = "1000000000",
    ["Billing:Plans:Scale:MonthlyRequests"] = "1000000000",
    ["Serilog:MinimumLevel:Default"] = "Error",
    ["Serilog:MinimumLevel:Override:Serilog.AspNetCore.RequestLoggingMiddleware"] = "Error",
});
var workspace = await gateway.Services.GetRequiredService<WorkspaceService>().CreateAsync("bench", Plans.Scale, CancellationToken.None);

using var direct = new HttpClient { BaseAddress = service.Address };
direct.DefaultRequestHeaders.Add(InternalHeaders.WorkspaceId, workspace.Workspace.Id);
direct.DefaultRequestHeaders.Add(InternalHeaders.KeyId, workspace.Key.Id);
direct.DefaultRequestHeaders.Add(InternalHeaders.Secret, secret);
using var proxied = new HttpClient { BaseAddress = gateway.Address };
proxied.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", workspace.Secret);

using var bare = new HttpClient { BaseAddress = gateway.Address };

Console.WriteLine($"gateway bench: GET /v1/ping, concurrency {concurrency}, {seconds:0} s per path, {Environment.ProcessorCount} cores");
await Measure(direct, "/v1/ping", TimeSpan.FromSeconds(2)); // warm-up: JIT, connections, key cache
await Measure(bare, "/bare/ping", TimeSpan.FromSeconds(2));
await Measure(proxied, "/v1/ping", TimeSpan.FromSeconds(2));
var a = await Measure(direct, "/v1/ping", TimeSpan.FromSeconds(seconds));
var c = await Measure(bare, "/bare/ping", TimeSpan.FromSeconds(seconds));
var b = await Measure(proxied, "/v1/ping", TimeSpan.FromSeconds(seconds));
Print("direct to service", a);
Print("bare proxy", c);
Print("through gateway", b);
Console.WriteLine($"ratio (gateway/direct) requests/s: {b.Rps / a.Rps:0.00}");
Console.WriteLine($"added by the proxy: p50 {c.P50 - a.P50:0.000} ms, p99 {c.P99 - a.P99:0.000} ms");
Console.WriteLine($"added by auth + limits (gateway - bare proxy): p50 {b.P50 - c.P50:0.000} ms, p99 {b.P99 - c.P99:0.000} ms");
return 0;

async Task<Result> Measure(HttpClient client, string path, TimeSpan duration)
{
    var latencies = new List<double>[concurrency];
    var stop = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, concurrency).Select(async i =>
    {
        var mine = latencies[i] = new List<double>(100_000);
        while (stop.Elapsed < duration)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync(path);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            await response.Content.ReadAsByteArrayAsync();
            mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }).ToArray();
    await Task.WhenAll(workers);
    var all = latencies.SelectMany(l => l).Order().ToArray();
    return new Result(all.Length / stop.Elapsed.TotalSeconds, all[all.Length / 2], all[(int)(all.Length * 0.99)]);
}

static void Print(string name, Result r) =>
    Console.WriteLine($"{name,-18} {r.Rps,9:0} req/s   p50 {r.P50,7:0.000} ms   p99 {r.P99,7:0.000} ms");

internal sealed record Result(double Rps, double P50, double P99);

/// <summary>The cheapest authenticated endpoint a service can have: who is calling.</summary>
internal sealed class PingModule : IServiceModule
{
    public string Name => "ping";

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        app.MapGet("/v1/ping", (ClaimsPrincipal user) => Results.Ok(new { workspaceId = user.WorkspaceIdOf() }));
        app.MapGet("/bare/ping", () => Results.Ok(new { workspaceId = "anonymous" })).AllowAnonymous();
    }
}
