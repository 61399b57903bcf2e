using LLMTune.Contracts;
using LLMTune.Platform.Bus;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace LLMTune.Inference.Features.Deployment;

/// <summary>A finished fine-tune goes into service at once; its record and <see cref="ModelDeployed"/> are written together.</summary>
public sealed class DeployTrainedModelConsumer(DeploymentService deployments, ILogger<DeployTrainedModelConsumer> logger)
    : IConsumer<TrainingCompleted>
{
    public async Task Consume(ConsumeContext<TrainingCompleted> context)
    {
        var training = context.Message;
        try
        {
            await deployments.DeployAsync(training, context.CancellationToken);
        }
        catch (DeploymentFailedException e)
        {
            // Retrying cannot fix a missing base model or artifact; the fault goes to the error queue for an operator.
            logger.LogError(e, "Could not deploy job {JobId} of workspace {WorkspaceId}", training.JobId, training.WorkspaceId);
            throw;
        }
    }
}

public sealed class DeployTrainedModelConsumerDefinition : ConsumerDefinition<DeployTrainedModelConsumer>
{
    public DeployTrainedModelConsumerDefinition() => ConcurrentMessageLimit = 1;

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<DeployTrainedModelConsumer> consumerConfigurator,
        IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Ignore<DeploymentFailedException>();
            r.Intervals(500, 2000, 5000);
        });
}

/// <summary>Every inference replica takes a removed fine-tune out of service, not only the one that got the DELETE.</summary>
public sealed class UnloadRemovedModelConsumer(DeploymentService deployments) : IConsumer<ModelRemoved>
{
    public Task Consume(ConsumeContext<ModelRemoved> context) => deployments.UnloadRemovedAsync(context.Message.ModelId, context.CancellationToken);
}

public sealed class UnloadRemovedModelConsumerDefinition(BusInstance instance) : EveryInstanceConsumerDefinition<UnloadRemovedModelConsumer>(instance)
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<UnloadRemovedModelConsumer> consumerConfigurator,
        IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r => r.Intervals(500, 2000, 5000)); // e.g. the store briefly unreachable
}
