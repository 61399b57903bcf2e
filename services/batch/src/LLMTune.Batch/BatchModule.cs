using LLMTune.Batch.Features.Batches;
using LLMTune.Batch.Features.OpenAiBatches;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Batch;

/// <summary>
/// Batch inference (<c>POST /v1/batch/inference</c>): the batch and its items are stored here (the truth); the
/// dispatcher asks the inference service to run each item (<c>RunBatchItem</c>), results come back as
/// <c>BatchItemCompleted</c> and are recorded once, and the end is announced with <c>BatchCompleted</c>. Works the same in
/// one process and split across processes, since the two services only talk over the bus.
/// </summary>
public sealed class BatchModule : IServiceModule
{
    public string Name => "batch";

    // /v1/batches is OpenAI's Batch API; its output and error files (ids file_batch_…) are this service's, more
    // specific than the files owner's /v1/files/{**rest}, so the gateway forwards them here.
    public IReadOnlyList<ServiceRoute> Routes =>
    [
        new("/v1/batch"),
        new("/v1/batch/{**rest}"),
        new("/v1/batches"),
        new("/v1/batches/{**rest}"),
        new("/v1/files/file_batch_{rest}"),
        new("/v1/files/file_batch_{rest}/content"),
    ];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        var services = builder.Services;
        services.AddOptions<BatchOptions>().BindConfiguration(BatchOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        services.AddSingleton<BatchStore>();
        services.AddSingleton<BatchEvents>();
        services.AddSingleton<BatchProgress>();
        services.AddScoped<BatchSubmission>();
        services.AddScoped<OpenAiBatchSubmission>();
        services.AddSingleton<BatchDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<BatchDispatcher>());
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<BatchItemCompletedConsumer, BatchItemCompletedConsumerDefinition>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        app.MapBatchEndpoints();
        app.MapOpenAiBatchEndpoints();
    }
}
