using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Artifacts;

public static class ArtifactStorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IArtifactStore"/> (singleton) chosen by <c>Artifacts:Provider</c>, its options (validated on
    /// start) and, for S3, a readiness check on the bucket. Safe to call from every module that needs it.
    /// </summary>
    public static IServiceCollection AddArtifactStore(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(ArtifactStoreRegistered)))
        {
            return services;
        }

        services.AddSingleton<ArtifactStoreRegistered>();
        services.AddOptions<ArtifactStorageOptions>().Bind(configuration.GetSection(ArtifactStorageOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ArtifactStorageOptions>, ArtifactStorageOptionsValidator>());
        services.TryAddSingleton<IArtifactStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ArtifactStorageOptions>>().Value;
            return options.Provider == ArtifactProvider.S3 ? new S3ArtifactStore(options.S3) : new LocalArtifactStore(options.LocalPath);
        });
        // Degraded, not unhealthy: a replica without its bucket still serves what it has (base models, loaded fine-tunes).
        services.AddHealthChecks().AddCheck<ArtifactStoreHealthCheck>(ArtifactStoreHealthCheck.Name, HealthStatus.Degraded, ["ready"]);
        return services;
    }

    private sealed class ArtifactStoreRegistered;
}

/// <summary>Readiness: an S3 bucket answers (a local folder is always there).</summary>
public sealed class ArtifactStoreHealthCheck(IArtifactStore store) : IHealthCheck
{
    public const string Name = "artifact-store";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (store is not S3ArtifactStore s3)
        {
            return HealthCheckResult.Healthy("local folder");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await s3.PingAsync(timeout.Token).ConfigureAwait(false);
            return HealthCheckResult.Healthy("bucket reachable");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // /readyz is anonymous: the type only, the details are for the logs of the failing operations.
            return new HealthCheckResult(context.Registration.FailureStatus, $"artifact bucket unreachable ({ex.GetType().Name})");
        }
    }
}
