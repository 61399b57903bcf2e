using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Batch.Features.Batches;

/// <summary>Records an item's result from the inference service (idempotent: a repeat changes nothing).</summary>
public sealed class BatchItemCompletedConsumer(BatchProgress progress, BatchDispatcher dispatcher) : IConsumer<BatchItemCompleted>
{
    public async Task Consume(ConsumeContext<BatchItemCompleted> context)
    {
        await progress.RecordAsync(context.Message, context.CancellationToken);
        dispatcher.Wake(); // room for the batch's next item
    }
}

public sealed class BatchItemCompletedConsumerDefinition : ConsumerDefinition<BatchItemCompletedConsumer>
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<BatchItemCompletedConsumer> consumerConfigurator,
        IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
}
