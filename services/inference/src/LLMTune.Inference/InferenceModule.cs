using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.BatchItems;
using LLMTune.Inference.Features.Deployment;
using LLMTune.Inference.Features.Embeddings;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.NativeInference;
using LLMTune.Inference.Features.OpenAiCompatible;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference;

/// <summary>
/// Synchronous inference: the native and playground endpoints, the OpenAI-compatible API and the model registry
/// (local GGUF models on the engine, OpenAI-compatible upstreams, deployed fine-tunes).
/// </summary>
public sealed class InferenceModule : IServiceModule
{
    public string Name => "inference";

    private static readonly TimeSpan GenerationTimeout = TimeSpan.FromMinutes(10);

    public IReadOnlyList<ServiceRoute> Routes =>
    [
        new("/v1/models", GenerationTimeout),
        new("/v1/models/{**rest}", GenerationTimeout),
        new("/v1/chat/{**rest}", GenerationTimeout),
        new("/v1/completions", GenerationTimeout),
        new("/v1/embeddings", GenerationTimeout),
        new("/v1/playground/{**rest}", GenerationTimeout),
    ];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        // Lowest priority: the bundled model is served unless configuration points llmtune/tiny elsewhere or disables it.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                [$"{InferenceOptions.Section}:Models:{InferenceOptions.BundledModelId}:Path"] = InferenceOptions.BundledModelPath,
                // The 4 MB model decodes fastest on one thread: with more, threads waking each other per token cost more than they save.
                [$"{InferenceOptions.Section}:Models:{InferenceOptions.BundledModelId}:Threads"] = "1",
            },
        });

        var services = builder.Services;

        // The OpenAPI generator names properties with the host's camelCase; OpenAI's types are snake_case on the wire.
        services.Configure<Microsoft.AspNetCore.OpenApi.OpenApiOptions>("v1", o => o.AddSchemaTransformer((schema, context, _) =>
        {
            if (context.JsonTypeInfo.Type.Namespace == typeof(OpenAiJson).Namespace)
            {
                OpenAiJson.SnakeCaseSchema(schema);
            }

            return Task.CompletedTask;
        }));
        services.AddOptions<InferenceOptions>().BindConfiguration(InferenceOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<InferenceOptions>, InferenceOptionsValidator>();

        // Upstream calls get their own Polly pipeline per model (UpstreamEndpoint), not the platform's default handler:
        // its total timeout would cut long streams and its retries could replay a request after bytes reached the client.
        // RemoveAllResilienceHandlers is marked experimental (EXTEXP0001); it is the documented way to opt one client out.
#pragma warning disable EXTEXP0001
        services.AddHttpClient(UpstreamEndpoint.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            // A stream dropped half-way (our client left) must close the upstream connection at once, so the upstream
            // stops generating; by default the handler would first drain up to 1 MB to reuse the connection.
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { MaxResponseDrainSize = 0, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            .RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001

        services.AddSingleton(sp => new ModelManager(sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<ModelRegistry>();
        services.AddArtifactStore(builder.Configuration);
        services.AddSingleton<DeploymentService>();
        services.AddSingleton<InferenceService>();
        services.AddSingleton<UsageMeter>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageMeter>());
        services.AddSingleton<InferenceResponder>();
        services.AddSingleton<EmbeddingsResponder>();
        services.AddSingleton<BatchItemRuns>();
        services.AddSingleton<BatchSlots>();
        services.AddSingleton<BatchCancellations>();
        services.AddHostedService<BatchItemRunIndexes>();
        services.AddSingleton<ModelLoading>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelLoading>());
        services.AddHealthChecks().AddCheck<ModelLoading>("inference-models", tags: ["ready"]);
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<DeployTrainedModelConsumer, DeployTrainedModelConsumerDefinition>();
        bus.AddConsumer<UnloadRemovedModelConsumer, UnloadRemovedModelConsumerDefinition>();
        bus.AddConsumer<RunBatchItemConsumer, RunBatchItemConsumerDefinition>();
        bus.AddConsumer<CheckModelAccessConsumer>();
        bus.AddConsumer<BatchCancelledConsumer, BatchCancelledConsumerDefinition>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology)
    {
        var models = app.MapGroup("/v1/models").WithTags("Models");
        models.MapGet("", ModelEndpoints.List);
        models.MapGet("/{**modelId}", (string modelId, System.Security.Claims.ClaimsPrincipal user, InferenceService inference, CancellationToken ct) =>
            ModelEndpoints.Get(Uri.UnescapeDataString(modelId), user, inference, ct));
        models.MapDelete("/{**modelId}", (string modelId, System.Security.Claims.ClaimsPrincipal user, ModelRegistry registry, DeploymentService deployments, CancellationToken ct) =>
            ModelEndpoints.Delete(Uri.UnescapeDataString(modelId), user, registry, deployments, ct));
        models.MapPost("/{**path}", NativeInferenceEndpoints.ModelRouteAsync)
            .WithTags("Inference")
            .Accepts<NativeInferenceRequest>("application/json")
            .Produces<NativeInferenceResponse>()
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream");

        var v1 = app.MapGroup("/v1");
        v1.MapPost("/playground/inference", NativeInferenceEndpoints.PlaygroundAsync)
            .WithTags("Inference")
            .Accepts<NativeInferenceRequest>("application/json")
            .Produces<NativeInferenceResponse>();
        v1.MapPost("/chat/completions", ChatCompletionsEndpoint.HandleAsync)
            .WithTags("OpenAI-compatible")
            .Accepts<ChatCompletionRequest>("application/json")
            .Produces<ChatCompletion>();
        v1.MapPost("/completions", CompletionsEndpoint.HandleAsync)
            .WithTags("OpenAI-compatible")
            .Accepts<CompletionRequest>("application/json")
            .Produces<TextCompletion>();
        v1.MapPost("/embeddings", EmbeddingsEndpoint.HandleAsync)
            .WithTags("OpenAI-compatible")
            .Accepts<EmbeddingsRequest>("application/json")
            .Produces<EmbeddingsResponse>();

        // Documents the native embeddings route; ids with slashes reach the same handler through the catch-all above.
        models.MapPost("/{modelId}/embeddings", (string modelId, HttpContext http, EmbeddingsResponder embeddings, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) =>
                NativeEmbeddingsEndpoint.HandleAsync(http, Uri.UnescapeDataString(modelId), json.Value.SerializerOptions, embeddings))
            .WithTags("Embeddings")
            .Accepts<NativeEmbeddingsRequest>("application/json")
            .Produces<NativeEmbeddingsResponse>();
    }

    private sealed class BatchItemRunIndexes(BatchItemRuns runs) : Microsoft.Extensions.Hosting.IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => runs.EnsureIndexesAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
