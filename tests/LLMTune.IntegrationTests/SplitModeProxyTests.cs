using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using LLMTune.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.IntegrationTests;

/// <summary>
/// Split mode: a real Kestrel service (built on the platform's service defaults, as every service is) behind the
/// gateway's YARP proxy, both on loopback in this process.
/// </summary>
public sealed class SplitModeProxyTests : IAsyncLifetime
{
    private const string InternalSecret = "internal-secret-for-tests-0123456789";
    private ModuleHost service = null!;
    private TestHost gateway = null!;
    private CreatedWorkspace workspace = null!;

    public async ValueTask InitializeAsync()
    {
        service = await ModuleHost.StartAsync([new EchoModule()], new Dictionary<string, string?> { ["Internal:Secret"] = InternalSecret });

        gateway = await TestHost.StartAsync("gateway", new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "LiteDb",
            ["Bus:Transport"] = "InMemory",
            ["Internal:Secret"] = InternalSecret,
            ["ReverseProxy:Clusters:inference:Destinations:inference-1:Address"] = service.Address.ToString(),
            ["ReverseProxy:Routes:test:ClusterId"] = "inference",
            ["ReverseProxy:Routes:test:Match:Path"] = "/v1/echo/{**rest}",
        });
        workspace = await gateway.Services.GetRequiredService<WorkspaceService>().CreateAsync("proxied", Plans.Sandbox, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await gateway.DisposeAsync();
        await service.DisposeAsync();
    }

    [Fact]
    public async Task Gateway_forwards_with_the_authenticated_identity_and_strips_spoofed_headers()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/echo/identity");
        request.Headers.Add(InternalHeaders.WorkspaceId, "ws_spoofed");
        request.Headers.Add(InternalHeaders.KeyId, "key_spoofed");
        request.Headers.Add(InternalHeaders.Secret, "guess");
        var response = await gateway.Client(workspace.Secret).SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);

        var echoed = JsonDocument.Parse(body).RootElement;
        Assert.Equal(workspace.Workspace.Id, echoed.GetProperty("workspaceId").GetString());
        Assert.Equal(workspace.Key.Id, echoed.GetProperty("keyId").GetString());
        Assert.Equal(1, echoed.GetProperty("workspaceHeaderValues").GetInt32()); // the spoofed value did not travel along
        Assert.DoesNotContain("spoofed", body);
        Assert.DoesNotContain(workspace.Secret, body); // the API key is not forwarded as identity
    }

    [Fact]
    public async Task Gateway_forwards_the_routes_each_module_declares_without_route_configuration()
    {
        // No ReverseProxy:Routes entry names /v1/models: the inference module's own route table sends it to its cluster.
        var response = await gateway.Client(workspace.Secret).GetAsync("/v1/models");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("echo", JsonDocument.Parse(body).RootElement.GetProperty("servedBy").GetString());
    }

    [Fact]
    public async Task Gateway_refuses_requests_without_a_key_before_proxying()
    {
        using var client = gateway.Client();
        var response = await client.GetAsync("/v1/echo/identity");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("\"error\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Calling_the_service_directly_without_the_internal_secret_gets_401()
    {
        using var direct = new HttpClient { BaseAddress = service.Address };
        using var spoofed = new HttpRequestMessage(HttpMethod.Get, "/v1/echo/identity");
        spoofed.Headers.Add(InternalHeaders.WorkspaceId, workspace.Workspace.Id);
        spoofed.Headers.Add(InternalHeaders.KeyId, workspace.Key.Id);
        var response = await direct.SendAsync(spoofed);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("unauthenticated", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());

        using var wrongSecret = new HttpRequestMessage(HttpMethod.Get, "/v1/echo/identity");
        wrongSecret.Headers.Add(InternalHeaders.WorkspaceId, workspace.Workspace.Id);
        wrongSecret.Headers.Add(InternalHeaders.KeyId, workspace.Key.Id);
        wrongSecret.Headers.Add(InternalHeaders.Secret, InternalSecret + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await direct.SendAsync(wrongSecret)).StatusCode);

        using var withKey = new HttpRequestMessage(HttpMethod.Get, "/v1/echo/identity");
        withKey.Headers.Authorization = new("Bearer", workspace.Secret);
        Assert.Equal(HttpStatusCode.Unauthorized, (await direct.SendAsync(withKey)).StatusCode); // services don't take API keys
    }

    [Fact]
    public async Task Request_id_travels_through_the_proxy()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/echo/identity");
        request.Headers.Add("x-request-id", "trace-through-proxy-1");
        var response = await gateway.Client(workspace.Secret).SendAsync(request);
        var echoed = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("trace-through-proxy-1", echoed.GetProperty("requestId").GetString());
        Assert.Equal("trace-through-proxy-1", response.Headers.GetValues("x-request-id").First());
    }

    /// <summary>A service module that reports who the platform says is calling.</summary>
    private sealed class EchoModule : IServiceModule
    {
        public string Name => "echo";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology)
        {
        }

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
            app.MapGet("/v1/models", () => Results.Ok(new { servedBy = "echo" }));
            app.MapGet("/v1/echo/identity", (ClaimsPrincipal user, HttpContext http) => Results.Ok(new
            {
                workspaceId = user.WorkspaceIdOf(),
                keyId = user.KeyIdOf(),
                workspaceHeaderValues = http.Request.Headers[InternalHeaders.WorkspaceId].Count,
                requestId = http.TraceIdentifier,
            }));
        }
    }
}
