using LLMTune.Contracts;
using LLMTune.Platform.Outbox;
using MassTransit;

namespace LLMTune.Billing.Features.Charging;

/// <summary>
/// Charges every finished inference request: synchronous, streamed (also when cut short) and batch items. The charge
/// is inserted under the request's usage id, so a second copy charges nothing and the inbox is not needed.
/// </summary>
public sealed class InferenceCompletedConsumer(Meter charging) : IConsumer<InferenceCompleted>, INaturallyIdempotentConsumer
{
    public Task Consume(ConsumeContext<InferenceCompleted> context) => charging.ChargeAsync(context.Message, context.CancellationToken);
}
