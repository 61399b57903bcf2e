using LLMTune.Billing.Features.Charging;
using LLMTune.Billing.Features.Usage;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;

namespace LLMTune.Billing;

/// <summary>
/// Plans, balances and usage: charges every finished inference request once (from <c>InferenceCompleted</c>) and every
/// completed fine-tune per trained token (from <c>TrainingCompleted</c>), keeps
/// daily roll-ups and answers <c>GET /v1/billing</c> and <c>GET /v1/usage</c>. Enforcement runs in the gateway process
/// (<see cref="BillingAdmissionModule"/>) on the same counters and balances.
/// </summary>
public sealed class BillingModule : IServiceModule
{
    public string Name => "billing";

    public IReadOnlyList<ServiceRoute> Routes => [new("/v1/billing"), new("/v1/usage")];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology) => builder.Services.AddBillingCore();

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<InferenceCompletedConsumer, InferenceCompletedConsumerDefinition>();
        bus.AddConsumer<TrainingChargeConsumer, TrainingChargeConsumerDefinition>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology) => app.MapBillingEndpoints();
}
