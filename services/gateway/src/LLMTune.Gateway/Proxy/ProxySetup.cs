using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;
using LLMTune.Platform.Identity;

namespace LLMTune.Gateway.Proxy;

/// <summary>
/// Split mode: YARP forwards authenticated /v1 requests to the owning service (routes, clusters, timeouts and
/// health checks in the <c>ReverseProxy</c> configuration section). Client-sent identity headers are dropped; the
/// authenticated workspace, key and the internal secret are added.
/// </summary>
public static class ProxySetup
{
    public static IServiceCollection AddGatewayProxy(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<InternalAuthOptions>().BindConfiguration(InternalAuthOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.Secret), "Internal:Secret (env Internal__Secret) is required when the gateway proxies.")
            .ValidateOnStart();
        services.AddRequestTimeouts();
        services.AddReverseProxy()
            .LoadFromConfig(configuration.GetSection("ReverseProxy"))
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
                }

                return ValueTask.CompletedTask;
            }));
        return services;
    }

    public static void MapGatewayProxy(this WebApplication app)
    {
        app.UseRequestTimeouts();
        app.MapReverseProxy();
    }
}
