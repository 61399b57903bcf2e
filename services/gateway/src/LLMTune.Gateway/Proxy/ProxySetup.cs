using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Transforms;

namespace LLMTune.Gateway.Proxy;

/// <summary>
/// Split mode: YARP forwards authenticated /v1 requests to the owning service (routes, clusters, timeouts and
/// health checks in the <c>ReverseProxy</c> configuration section). Client-sent identity headers are dropped; the
/// authenticated workspace, key and the internal secret are added.
/// </summary>
public static class ProxySetup
{
    /// <summary>YARP's options of the TransportFailureRate passive health policy (detection window, thresholds).</summary>
    public const string TransportFailureRateSection = "ReverseProxy:TransportFailureRate";

    /// <summary>The window in which transport failures are counted, and so the shortest passive reactivation period.</summary>
    public static readonly TimeSpan DefaultFailureWindow = TimeSpan.FromSeconds(5);

    public static IServiceCollection AddGatewayProxy(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<InternalAuthOptions>().BindConfiguration(InternalAuthOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.Secret), "Internal:Secret (env Internal__Secret) is required when the gateway proxies.")
            .ValidateOnStart();
        services.AddRequestTimeouts();
        // YARP's passive check never reactivates a destination before its failure-rate window (60 s by default) has
        // passed, whatever the cluster's ReactivationPeriod says: a restarted service stayed refused for a minute after
        // its health probe passed. A short window makes the configured period the one that counts.
        services.AddOptions<TransportFailureRateHealthPolicyOptions>()
            .Configure(o => o.DetectionWindowSize = DefaultFailureWindow)
            .BindConfiguration(TransportFailureRateSection)
            .Validate(o => o.DetectionWindowSize > TimeSpan.Zero, $"{TransportFailureRateSection}:DetectionWindowSize must be positive.")
            .ValidateOnStart();
        services.AddReverseProxy()
            .LoadFromConfig(configuration.GetSection("ReverseProxy")) // clusters (where each service runs) and extra routes
            .LoadFromMemory(ModuleRoutes(services), [])
            .AddTransforms(context => context.AddRequestTransform(transform =>
            {
                var headers = transform.ProxyRequest.Headers;
                foreach (var header in InternalHeaders.All)
                {
                    headers.Remove(header);
                }

                var user = transform.HttpContext.User;
                if (user.Identity?.IsAuthenticated == true && user.FindFirst(WorkspaceClaims.WorkspaceId) is not null)
                {
                    var secret = transform.HttpContext.RequestServices.GetRequiredService<IOptions<InternalAuthOptions>>().Value.Secret!;
                    headers.Add(InternalHeaders.WorkspaceId, user.WorkspaceIdOf());
                    headers.Add(InternalHeaders.KeyId, user.KeyIdOf());
                    headers.Add(InternalHeaders.Secret, secret);
                    headers.Add(InternalHeaders.UsageId, user.UsageIdOf());
                    foreach (var (claim, header) in InternalHeaders.Forwarded)
                    {
                        if (user.FindFirst(claim) is { } value)
                        {
                            headers.Add(header, value.Value);
                        }
                    }
                }
                else if (user.IsInRole(OperatorPolicy.Role))
                {
                    // A route with the operator's policy (checked above, before forwarding).
                    headers.Add(InternalHeaders.Operator, "true");
                    headers.Add(InternalHeaders.Secret, transform.HttpContext.RequestServices.GetRequiredService<IOptions<InternalAuthOptions>>().Value.Secret!);
                }

                return ValueTask.CompletedTask;
            }));
        return services;
    }

    /// <summary>
    /// The routes every module declares (<see cref="IServiceModule.Routes"/>), each to the cluster named after its module.
    /// Order 100 puts them after local endpoints, so a module hosted in this process answers in-process.
    /// </summary>
    private static IReadOnlyList<RouteConfig> ModuleRoutes(IServiceCollection services)
    {
        var table = services.LastOrDefault(d => d.ServiceType == typeof(ServiceRouteTable))?.ImplementationInstance as ServiceRouteTable;
        return table?.Routes.Select(r => new RouteConfig
        {
            RouteId = $"{r.Module}:{r.Route.Path}",
            ClusterId = r.Module,
            Order = 100,
            Match = new RouteMatch { Path = r.Route.Path },
            Timeout = r.Route.Timeout,
            AuthorizationPolicy = r.Route.AuthorizationPolicy,
        }).ToList() ?? [];
    }

    public static void MapGatewayProxy(this WebApplication app)
    {
        app.UseRequestTimeouts();
        app.MapReverseProxy(proxy =>
        {
            proxy.Use(ProxyErrors.TranslateAsync);
            // YARP's default pipeline, which a custom one replaces.
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
    }
}
