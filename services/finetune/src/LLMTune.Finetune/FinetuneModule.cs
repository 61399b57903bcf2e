using LLMTune.Finetune.Features.BaseModels;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Deployment;
using LLMTune.Finetune.Features.Files;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Finetune.Features.Training;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune;

/// <summary>
/// Fine-tuning: dataset files, jobs (the job document is the truth), a leased worker that trains with the engine and
/// resumes after crashes, and the deployed model recorded on the job when the inference service announces it.
/// </summary>
public sealed class FinetuneModule : IServiceModule
{
    public string Name => "finetune";

    private static readonly TimeSpan UploadTimeout = TimeSpan.FromMinutes(10);

    public IReadOnlyList<ServiceRoute> Routes =>
    [
        new("/v1/fine-tune"),
        new("/v1/fine-tune/{**rest}"),
        new("/v1/files", UploadTimeout),
        new("/v1/files/{**rest}", UploadTimeout),
    ];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        var services = builder.Services;
        services.AddOptions<FinetuneOptions>().BindConfiguration(FinetuneOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<FinetuneOptions>, FinetuneOptionsValidator>();

        services.AddArtifactStore(builder.Configuration);
        services.AddSingleton<SafeHttpDownloader>();
        services.AddSingleton<S3DatasetReader>();
        services.AddSingleton<GcsDatasetReader>();
        services.AddSingleton<DatasetTokenizer>();
        services.AddSingleton<DatasetPreparer>();

        services.AddSingleton<BaseModelCatalog>();
        services.AddSingleton<FileStore>();
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobRuntime>();
        services.AddSingleton<JobLifecycle>();
        services.AddSingleton<JobCheckpoints>();
        services.AddSingleton<JobExecution>();
        services.AddScoped<JobService>();
        services.AddSingleton<ITrainingRunner, InProcessTrainingRunner>();
        services.AddHostedService<JobIndexes>();

        // Always registered; it reads Finetune:Worker:Enabled from the validated options when it starts.
        services.AddSingleton<TrainingWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<TrainingWorker>());
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<JobModelDeployedConsumer, JobModelDeployedConsumerDefinition>();
        bus.AddConsumer<ReadFileConsumer>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        app.MapFileEndpoints();
        app.MapJobEndpoints();
    }

    /// <summary>Creates the store indexes before the worker starts looking for jobs.</summary>
    private sealed class JobIndexes(JobStore jobs) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => jobs.EnsureIndexesAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
