using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Billing.Features.Charging;

/// <summary>Charges a completed fine-tune for the tokens it trained on, once per job (a redelivery finds its record).</summary>
public sealed class TrainingChargeConsumer(Meter charging) : IConsumer<TrainingCompleted>
{
    public Task Consume(ConsumeContext<TrainingCompleted> context) => charging.ChargeAsync(context.Message, context.CancellationToken);
}
