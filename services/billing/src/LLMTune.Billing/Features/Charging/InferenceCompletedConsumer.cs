using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Billing.Features.Charging;

/// <summary>Charges every finished inference request: synchronous, streamed (also when cut short) and batch items.</summary>
public sealed class InferenceCompletedConsumer(Meter charging) : IConsumer<InferenceCompleted>
{
    public Task Consume(ConsumeContext<InferenceCompleted> context) => charging.ChargeAsync(context.Message, context.CancellationToken);
}
