using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Modules;
using LLMTune.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.IntegrationTests;

/// <summary>
/// What a client sees through the gateway when a service is down (503 with Retry-After: come back shortly) or dies
/// under a request (502 at once), always in the error shape.
/// </summary>
public sealed class ProxyFailureTests
{
    private const string InternalSecret = "internal-secret-for-tests-0123456789";

    [Fact]
    public async Task A_service_that_refuses_connections_answers_503_with_retry_after()
    {
        await using var gateway = await GatewayAsync(new Uri($"http://127.0.0.1:{ClosedPort()}/"));
        var workspace = await WorkspaceAsync(gateway);

        var watch = Stopwatch.StartNew();
        var response = await gateway.Client(workspace.Secret).GetAsync("/v1/echo/ok", TestContext.Current.CancellationToken);

        await response.AssertError(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.NotNull(response.Headers.RetryAfter?.Delta);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task A_cluster_without_a_healthy_destination_answers_503_with_retry_after_and_recovers()
    {
        await using var service = await ModuleHost.StartAsync([new FlakyModule()], new Dictionary<string, string?> { ["Internal:Secret"] = InternalSecret });
        var health = service.Services.GetRequiredService<FlakyHealth>();
        await using var gateway = await GatewayAsync(service.Address, new Dictionary<string, string?>
        {
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Enabled"] = "true",
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Interval"] = "00:00:00.200",
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Timeout"] = "00:00:01",
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Policy"] = "ConsecutiveFailures",
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Path"] = "/v1/echo/health",
        });
        var workspace = await WorkspaceAsync(gateway);
        using var client = gateway.Client(workspace.Secret);

        health.Healthy = false;
        var unavailable = await Eventually.Get(
            async () => (HttpResponseMessage?)await client.GetAsync("/v1/echo/ok"), r => r!.StatusCode == HttpStatusCode.ServiceUnavailable, what: "503 once the destination is unhealthy");

        await unavailable.AssertError(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.Equal(TimeSpan.FromSeconds(1), unavailable.Headers.RetryAfter?.Delta); // the health check interval, at least 1 s

        health.Healthy = true;
        await Eventually.True(async () => (await client.GetAsync("/v1/echo/ok")).StatusCode == HttpStatusCode.OK, what: "recovered");
    }

    [Fact]
    public async Task A_service_that_dies_under_a_request_answers_502_at_once()
    {
        await using var service = await ModuleHost.StartAsync([new FlakyModule()], new Dictionary<string, string?> { ["Internal:Secret"] = InternalSecret });
        await using var gateway = await GatewayAsync(service.Address);
        var workspace = await WorkspaceAsync(gateway);

        var watch = Stopwatch.StartNew();
        var response = await gateway.Client(workspace.Secret).GetAsync("/v1/echo/die", TestContext.Current.CancellationToken);

        await response.AssertError(HttpStatusCode.BadGateway, "upstream_error");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    private static Task<TestHost> GatewayAsync(Uri destination, IDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "LiteDb",
            ["Bus:Transport"] = "InMemory",
            ["Internal:Secret"] = InternalSecret,
            ["ReverseProxy:Clusters:inference:Destinations:inference-1:Address"] = destination.ToString(),
            ["ReverseProxy:Clusters:inference:HealthCheck:Active:Enabled"] = "false",
            ["ReverseProxy:Routes:test:ClusterId"] = "inference",
            ["ReverseProxy:Routes:test:Match:Path"] = "/v1/echo/{**rest}",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return TestHost.StartAsync("gateway", settings);
    }

    private static Task<CreatedWorkspace> WorkspaceAsync(TestHost gateway) =>
        gateway.Services.GetRequiredService<WorkspaceService>().CreateAsync("proxied", Plans.Sandbox, CancellationToken.None);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port; // free once the listener stops: connects are refused
    }

    private sealed class FlakyHealth
    {
        public volatile bool Healthy = true;
    }

    /// <summary>A service whose health can be switched off, and a route that kills its connection mid-request.</summary>
    private sealed class FlakyModule : IServiceModule
    {
        public string Name => "flaky";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology) => builder.Services.AddSingleton<FlakyHealth>();

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
            app.MapGet("/v1/echo/ok", () => Results.Ok(new { ok = true }));
            app.MapGet("/v1/echo/health", (FlakyHealth health) => health.Healthy ? Results.Ok() : Results.StatusCode(503)).AllowAnonymous();
            app.MapGet("/v1/echo/die", (HttpContext http) => http.Abort());
        }
    }
}
