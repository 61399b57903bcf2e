using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Deployment;
using LLMTune.Inference.Features.Upstream;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference.Features.Models;

/// <summary>
/// Registers the configured models before the server takes requests (local GGUFs are loaded, upstreams get their
/// pipelines), then restores the deployed fine-tunes recorded in the store.
/// </summary>
public sealed class ModelLoading(
    IOptions<InferenceOptions> options,
    ModelRegistry registry,
    ModelManager engine,
    DeploymentService deployments,
    IHttpClientFactory httpClients,
    TimeProvider time,
    ILogger<ModelLoading> logger) : IHostedService, IHealthCheck
{
    private readonly List<string> _problems = [];

    /// <summary>The engine's settings for a local model.</summary>
    public static ModelLoadOptions EngineOptions(string path, ModelOptions settings) => new()
    {
        Path = path,
        ContextLength = settings.ContextLength,
        MaxConcurrentSequences = settings.MaxConcurrency,
        ChoiceSequences = settings.ChoiceSequences,
        QueueCapacity = settings.QueueSize,
        Threads = settings.Threads,
    };

    /// <summary>Relative model paths are relative to the executable, where the bundled model is copied.</summary>
    public static string ResolvePath(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, settings) in options.Value.Models.Where(m => m.Value.Enabled).OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            try
            {
                await RegisterAsync(id, settings, cancellationToken);
            }
            catch (Exception e) when (e is EngineException or IOException)
            {
                Problem(e, $"Model {id} could not be loaded: {e.Message}");
            }
        }

        try
        {
            await deployments.RestoreAllAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The store may come up later; deployed models then load on first use.
            Problem(e, $"Deployed models could not be restored: {e.Message}");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var models = registry.All().Count;
        lock (_problems)
        {
            return Task.FromResult(_problems.Count == 0
                ? HealthCheckResult.Healthy($"{models} models registered.")
                : HealthCheckResult.Degraded($"{models} models registered; {string.Join(" ", _problems)}"));
        }
    }

    private async Task RegisterAsync(string id, ModelOptions settings, CancellationToken cancellationToken)
    {
        var created = time.GetUtcNow();
        if (settings.Upstream is { } upstream)
        {
            registry.Add(new UpstreamServedModel
            {
                Id = id,
                Created = created,
                Fallbacks = settings.Fallbacks,
                Endpoint = new UpstreamEndpoint(id, upstream, httpClients, time),
            });
            logger.LogInformation("Model {ModelId} is served by {BaseUrl}", id, upstream.BaseUrl);
            return;
        }

        var path = ResolvePath(settings.Path!);
        if (!File.Exists(path))
        {
            if (id == InferenceOptions.BundledModelId && settings.Path == InferenceOptions.BundledModelPath)
            {
                logger.LogWarning("The bundled model {Path} is missing; {ModelId} is not served", path, id);
                return;
            }

            throw new IOException($"GGUF file '{path}' does not exist.");
        }

        var model = await engine.LoadAsync(id, EngineOptions(path, settings), cancellationToken);
        registry.Add(new LocalServedModel { Id = id, Created = created, Fallbacks = settings.Fallbacks, Model = model, Settings = settings });
    }

    private void Problem(Exception e, string message)
    {
        logger.LogError(e, "{Problem}", message);
        lock (_problems)
        {
            _problems.Add(message);
        }
    }
}
