using Microsoft.Extensions.Logging;

namespace LLMTune.Webhooks;

/// <summary>Fans an event out: one delivery per enabled endpoint that wants it, and one to the job's or batch's own webhookUrl.</summary>
public sealed class DeliveryIntake(EndpointStore endpoints, DeliveryStore deliveries, DeliverySignal signal, TimeProvider time, ILogger<DeliveryIntake> logger)
{
    public async Task<int> AcceptAsync(WebhookEvent e, string? webhookUrl, CancellationToken ct)
    {
        var created = 0;
        foreach (var endpoint in (await endpoints.EnabledAsync(e.WorkspaceId, ct)).Where(x => x.Wants(e.Type)))
        {
            created += await TryCreateAsync(e, endpoint.Id, endpoint.Url, ct) ? 1 : 0;
        }

        if (!string.IsNullOrWhiteSpace(webhookUrl))
        {
            created += await TryCreateAsync(e, null, webhookUrl, ct) ? 1 : 0;
        }

        if (created > 0)
        {
            signal.Wake();
        }

        return created;
    }

    /// <summary>A test event for one endpoint.</summary>
    public async Task<WebhookDelivery> AcceptTestAsync(WebhookEndpoint endpoint, CancellationToken ct)
    {
        var e = WebhookEvent.ForTest(endpoint.WorkspaceId, endpoint.Id, time.GetUtcNow().UtcDateTime);
        var delivery = New(e, endpoint.Id, endpoint.Url);
        await deliveries.TryInsertAsync(delivery, ct);
        signal.Wake();
        return delivery;
    }

    private async Task<bool> TryCreateAsync(WebhookEvent e, string? endpointId, string url, CancellationToken ct)
    {
        var inserted = await deliveries.TryInsertAsync(New(e, endpointId, url), ct);
        if (!inserted)
        {
            logger.LogDebug("Event {EventId} already has a delivery to {Destination}", e.Id, endpointId ?? "its webhookUrl");
        }

        return inserted;
    }

    private WebhookDelivery New(WebhookEvent e, string? endpointId, string url)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return new WebhookDelivery
        {
            Id = DeliveryStore.IdFor(e.Id, endpointId ?? "url:" + url),
            WorkspaceId = e.WorkspaceId,
            EventId = e.Id,
            EventType = e.Type,
            Subject = e.Subject,
            EventAt = e.OccurredAt,
            Data = e.Data,
            EndpointId = endpointId,
            Url = url,
            Status = DeliveryStatus.Pending,
            NextAttemptAt = now,
            CreatedAt = now,
        };
    }
}

/// <summary>Wakes this process's delivery worker when new deliveries were stored (other replicas find them by polling).</summary>
public sealed class DeliverySignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Wake()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
    }

    public async Task WaitAsync(TimeSpan timeout, CancellationToken ct) => await _signal.WaitAsync(timeout, ct);
}
