using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Admission;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing;

/// <summary>
/// Billing's part of the gateway process, so its target is <c>gateway</c>: admission (quotas, credits and rate limits,
/// before a request is handled or forwarded) on data the gateway process owns: its counters and token reservations,
/// the workspace's plan, and its copy of billing's account statuses (<c>AccountStatusChanged</c>). It settles its
/// token reservations from <c>InferenceCompleted</c> itself.
/// </summary>
public sealed class BillingAdmissionModule : IServiceModule
{
    public string Name => "gateway";

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        builder.Services.AddPlans();
        builder.Services.AddSingleton<Counters>();
        builder.Services.AddSingleton<TokenBudget>();
        builder.Services.AddSingleton<WorkspacePlans>();
        builder.Services.AddSingleton<AccountStandings>();
        builder.Services.AddSingleton<AccountStatusPublisher>();
        builder.Services.AddSingleton<ConcurrencyGate>();
        builder.Services.AddSingleton<RequestWindows>();
        builder.Services.AddSingleton<TokenEstimator>();
        builder.Services.AddSingleton<RequestAdmission>();
        builder.Services.AddHostedService<AdmissionIndexes>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<AccountStandingConsumer, BillingConsumerDefinition<AccountStandingConsumer>>();
        bus.AddConsumer<TokenSettlementConsumer, BillingConsumerDefinition<TokenSettlementConsumer>>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        // After authentication and authorization (UseServiceDefaults), before the endpoint or the proxy runs.
        app.UseMiddleware<AdmissionMiddleware>();
        app.UseCreditTargetCheck();
    }
}
