using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Admission;
using LLMTune.Platform.Modules;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing;

/// <summary>
/// Billing's part of the gateway process, so its target is <c>gateway</c>: admission (quotas, credits and rate limits,
/// before a request is handled or forwarded) and the operator's top-ups under <c>/admin</c>.
/// </summary>
public sealed class BillingAdmissionModule : IServiceModule
{
    public string Name => "gateway";

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        builder.Services.AddBillingCore();
        builder.Services.AddSingleton<ConcurrencyGate>();
        builder.Services.AddSingleton<RequestWindows>();
        builder.Services.AddSingleton<TokenEstimator>();
        builder.Services.AddSingleton<RequestAdmission>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        // After authentication and authorization (UseServiceDefaults), before the endpoint or the proxy runs.
        app.UseMiddleware<AdmissionMiddleware>();
        app.MapCreditEndpoints();
    }
}
