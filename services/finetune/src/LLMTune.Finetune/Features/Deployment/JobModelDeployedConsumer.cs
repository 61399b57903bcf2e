using LLMTune.Contracts;
using LLMTune.Finetune.Features.Jobs;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Deployment;

/// <summary>Records the deployed model id on the job the inference service deployed (idempotent: a repeat changes nothing).</summary>
public sealed class JobModelDeployedConsumer(JobStore jobs, ILogger<JobModelDeployedConsumer> logger) : IConsumer<ModelDeployed>
{
    public async Task Consume(ConsumeContext<ModelDeployed> context)
    {
        var deployed = context.Message;
        if (deployed.JobId is null)
        {
            return;
        }

        var job = await jobs.SetFineTunedModelAsync(deployed.JobId, deployed.WorkspaceId, deployed.ModelId, context.CancellationToken);
        if (job is null)
        {
            return; // unknown job, or already recorded
        }

        await jobs.AddEventAsync(job, "model.deployed", $"Deployed as {deployed.ModelId}.", e => e.Status = JobView.StatusName(job.Status), context.CancellationToken);
        logger.LogInformation("Fine-tune job {JobId} deployed as {ModelId}", job.Id, deployed.ModelId);
    }
}

public sealed class JobModelDeployedConsumerDefinition : ConsumerDefinition<JobModelDeployedConsumer>
{
    public JobModelDeployedConsumerDefinition()
    {
        // Its own queue name, so it never competes with another service's ModelDeployed consumer.
        EndpointName = "finetune-model-deployed";
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<JobModelDeployedConsumer> consumer, IRegistrationContext context)
    {
        endpoint.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
    }
}
