using LLMTune.Platform.Storage;

namespace LLMTune.Webhooks;

public enum DeliveryStatus
{
    Pending,
    Succeeded,
    Failed,
}

/// <summary>
/// One event on its way to one destination (a workspace endpoint or a job's/batch's webhookUrl), with every attempt.
/// The id is derived from the event and the destination, so consuming an event twice inserts nothing new.
/// <see cref="NextAttemptAt"/> is the stored due time: any replica claims due deliveries, also after a restart.
/// </summary>
public sealed class WebhookDelivery : IDocument
{
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";

    /// <summary>The <c>webhook-id</c> header: the same on every attempt and resend.</summary>
    public string EventId { get; set; } = "";
    public string EventType { get; set; } = "";

    /// <summary>The job, batch or endpoint the event is about; events about one subject reach a destination in order.</summary>
    public string Subject { get; set; } = "";
    public DateTime EventAt { get; set; }

    /// <summary>The event's <c>data</c> object, as JSON.</summary>
    public string Data { get; set; } = "{}";

    /// <summary>The workspace endpoint, or null for a job's or batch's own webhookUrl (signed with the workspace secret).</summary>
    public string? EndpointId { get; set; }
    public string Url { get; set; } = "";

    public DeliveryStatus Status { get; set; }

    /// <summary>When the next attempt is due; while an attempt runs, when its lease expires; once finished, <see cref="DeliveryStore.Never"/>.</summary>
    public DateTime NextAttemptAt { get; set; }
    public string? LeaseOwner { get; set; }

    public List<DeliveryAttempt> Attempts { get; set; } = [];

    /// <summary>Attempts made before the last resend: the retry schedule starts again after a resend.</summary>
    public int AttemptsBeforeResend { get; set; }
    public string? LastError { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
}

public sealed class DeliveryAttempt
{
    public int Number { get; set; }
    public DateTime At { get; set; }
    public int? StatusCode { get; set; }
    public long LatencyMs { get; set; }

    /// <summary>The first 1 KB of the receiver's answer.</summary>
    public string? Response { get; set; }
    public string? Error { get; set; }
}
