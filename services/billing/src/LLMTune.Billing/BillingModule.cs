using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Charging;
using LLMTune.Billing.Features.Plans;
using LLMTune.Billing.Features.Usage;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing;

/// <summary>
/// Balances, top-ups and usage, owned here: charges every finished inference request once (from
/// <c>InferenceCompleted</c>) and every completed fine-tune per trained token (from <c>TrainingCompleted</c>), keeps
/// daily roll-ups, answers <c>GET /v1/billing</c>, <c>GET /v1/usage</c> and the operator's top-ups, and announces
/// credit statuses (<c>AccountStatusChanged</c>) in the same write as the balance change. Plans come from the gateway's
/// <c>WorkspacePlanChanged</c> (its own copy); enforcement runs in the gateway process (<see cref="BillingAdmissionModule"/>).
/// </summary>
public sealed class BillingModule : IServiceModule
{
    public string Name => "billing";

    public IReadOnlyList<ServiceRoute> Routes =>
        [new("/v1/billing"), new("/v1/usage"), new(CreditEndpoints.Route, AuthorizationPolicy: OperatorPolicy.Name)];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        builder.Services.AddPlans();
        builder.Services.AddSingleton<PlanView>();
        builder.Services.AddSingleton<Balances>();
        builder.Services.AddSingleton<Meter>();
        builder.Services.AddHostedService<ChargingIndexes>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<InferenceCompletedConsumer, BillingConsumerDefinition<InferenceCompletedConsumer>>();
        bus.AddConsumer<TrainingChargeConsumer, BillingConsumerDefinition<TrainingChargeConsumer>>();
        bus.AddConsumer<WorkspacePlanConsumer, BillingConsumerDefinition<WorkspacePlanConsumer>>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        app.MapBillingEndpoints();
        app.MapCreditEndpoints();
    }
}
