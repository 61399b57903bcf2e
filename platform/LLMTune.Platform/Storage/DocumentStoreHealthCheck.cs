using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LLMTune.Platform.Storage;

/// <summary>Readiness: the document store answers a ping.</summary>
public sealed class DocumentStoreHealthCheck(IDocumentStore store) : IHealthCheck
{
    public const string Name = "document-store";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await store.PingAsync(cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy($"{store.GetType().Name} reachable");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"{store.GetType().Name} unreachable: {ex.Message}");
        }
    }
}
