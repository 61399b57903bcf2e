using LLMTune.Gateway.Admin;
using LLMTune.Gateway.ApiKeys;
using LLMTune.Gateway.Dashboard;
using LLMTune.Gateway.Proxy;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Gateway;

/// <summary>
/// The front door: API keys and workspaces, operator administration, and in split mode the YARP proxy to the other
/// services. In the single process its key authentication wraps every module's endpoints directly.
/// </summary>
public sealed class GatewayModule : IServiceModule
{
    public string Name => "gateway";

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        var services = builder.Services;
        services.AddOptions<ApiKeyOptions>().BindConfiguration(ApiKeyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<AdminOptions>().BindConfiguration(AdminOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<InitialWorkspaceOptions>().BindConfiguration(InitialWorkspaceOptions.Section);
        services.AddSingleton<ApiKeyService>();
        services.AddSingleton<WorkspaceService>();
        services.AddHostedService<InitialWorkspace>();

        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddScheme<AuthenticationSchemeOptions, OperatorAuthenticationHandler>(OperatorAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder().AddPolicy(OperatorAuthenticationHandler.Policy, policy => policy
            .AddAuthenticationSchemes(OperatorAuthenticationHandler.SchemeName)
            .RequireRole(OperatorPolicy.Role));

        if (!topology.IsAllInOne)
        {
            services.AddGatewayProxy(builder.Configuration);
        }
    }

    public void AddConsumers(IBusRegistrationConfigurator bus) =>
        bus.AddConsumer<ApiKeyChangedConsumer, ApiKeyChangedConsumerDefinition>();

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        app.MapKeyEndpoints();
        app.MapAdminEndpoints();
        app.MapDashboard();
        if (!topology.IsAllInOne)
        {
            app.MapGatewayProxy();
        }
    }
}
