using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Billing.Features.Charging;

/// <summary>Charges every finished inference request: synchronous, streamed (also when cut short) and batch items.</summary>
public sealed class InferenceCompletedConsumer(Meter charging) : IConsumer<InferenceCompleted>
{
    public Task Consume(ConsumeContext<InferenceCompleted> context) => charging.ChargeAsync(context.Message, context.CancellationToken);
}

public sealed class InferenceCompletedConsumerDefinition : ConsumerDefinition<InferenceCompletedConsumer>
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<InferenceCompletedConsumer> consumer, IRegistrationContext context) =>
        endpoint.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
}
