using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Webhooks;

/// <summary>
/// Turns lifecycle events into stored deliveries. Idempotent: a repeated message maps to the same webhook-id and
/// delivery ids, and inserting those again changes nothing.
/// </summary>
public sealed class LifecycleEventConsumer(DeliveryIntake intake) :
    IConsumer<TrainingStarted>,
    IConsumer<TrainingCompleted>,
    IConsumer<TrainingFailed>,
    IConsumer<ModelDeployed>,
    IConsumer<BatchCompleted>
{
    public Task Consume(ConsumeContext<TrainingStarted> context) =>
        intake.AcceptAsync(WebhookEvent.From(context.Message), context.Message.WebhookUrl, context.CancellationToken);

    public Task Consume(ConsumeContext<TrainingCompleted> context) =>
        intake.AcceptAsync(WebhookEvent.From(context.Message), context.Message.WebhookUrl, context.CancellationToken);

    public Task Consume(ConsumeContext<TrainingFailed> context) =>
        intake.AcceptAsync(WebhookEvent.From(context.Message), context.Message.WebhookUrl, context.CancellationToken);

    public Task Consume(ConsumeContext<ModelDeployed> context) =>
        intake.AcceptAsync(WebhookEvent.From(context.Message), context.Message.WebhookUrl, context.CancellationToken);

    public Task Consume(ConsumeContext<BatchCompleted> context) =>
        intake.AcceptAsync(WebhookEvent.From(context.Message), context.Message.WebhookUrl, context.CancellationToken);
}

public sealed class LifecycleEventConsumerDefinition : ConsumerDefinition<LifecycleEventConsumer>
{
    public LifecycleEventConsumerDefinition()
    {
        // Its own queue, so it never competes with another service's consumers of the same events.
        EndpointName = "webhooks-lifecycle-events";
        // Enough at once that new deliveries share store transactions (DeliveryStore's group commit) under load.
        ConcurrentMessageLimit = 32;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<LifecycleEventConsumer> consumer, IRegistrationContext context)
    {
        endpoint.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
    }
}
