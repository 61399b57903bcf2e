using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Batch.Features.Batches;

/// <summary>Records an item's result from the inference service (idempotent: a repeat changes nothing).</summary>
public sealed class BatchItemCompletedConsumer(BatchProgress progress) : IConsumer<BatchItemCompleted>
{
    public Task Consume(ConsumeContext<BatchItemCompleted> context) => progress.RecordAsync(context.Message, context.CancellationToken);
}

public sealed class BatchItemCompletedConsumerDefinition : ConsumerDefinition<BatchItemCompletedConsumer>
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<BatchItemCompletedConsumer> consumerConfigurator,
        IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
}
