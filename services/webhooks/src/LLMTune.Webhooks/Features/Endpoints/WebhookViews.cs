namespace LLMTune.Webhooks;

public sealed record CreateEndpointRequest(string? Url, List<string>? Events, string? Description, bool? Enabled);

public sealed record UpdateEndpointRequest(string? Url, List<string>? Events, string? Description, bool? Enabled);

public sealed record ReplayRequest(DateTime? Since, DateTime? Until);

/// <summary>An endpoint; <c>secret</c> only in the answers to create and rotate-secret (shown once).</summary>
public sealed record EndpointView(
    string Id,
    string Url,
    IReadOnlyList<string> Events,
    string? Description,
    bool Enabled,
    string? DisabledReason,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    string? Secret)
{
    public static EndpointView From(WebhookEndpoint e, string? secret = null) =>
        new(e.Id, e.Url, e.Events, e.Description, e.Enabled, e.DisabledReason, e.CreatedAt, e.UpdatedAt, secret);
}

/// <summary>The workspace signing secret; <c>secret</c> is shown once (first read, then after each rotation).</summary>
public sealed record WorkspaceSecretView(string? Secret, DateTime CreatedAt, DateTime? RotatedAt, DateTime? PreviousExpiresAt)
{
    public static WorkspaceSecretView From(WorkspaceSecret s, string? plain, DateTime now) =>
        new(plain, s.CreatedAt, s.RotatedAt, s.Keys.InForce(now).Skip(1).Select(k => k.ExpiresAt).Max());
}

public sealed record AttemptView(int Number, DateTime At, int? StatusCode, long LatencyMs, string? Response, string? Error)
{
    public static AttemptView From(DeliveryAttempt a) => new(a.Number, a.At, a.StatusCode, a.LatencyMs, a.Response, a.Error);
}

public sealed record DeliveryView(
    string Id,
    string WebhookId,
    string Event,
    string? EndpointId,
    string Url,
    string Status,
    int AttemptCount,
    DateTime? NextAttemptAt,
    string? LastError,
    DateTime CreatedAt,
    DateTime? CompletedAt,
    IReadOnlyList<AttemptView>? Attempts)
{
    public static string StatusName(DeliveryStatus s) => s switch
    {
        DeliveryStatus.Pending => "pending",
        DeliveryStatus.Succeeded => "succeeded",
        _ => "failed",
    };

    public static DeliveryView Summary(WebhookDelivery d) => From(d, withAttempts: false);

    public static DeliveryView From(WebhookDelivery d, bool withAttempts = true) => new(
        d.Id, d.EventId, d.EventType, d.EndpointId, d.Url, StatusName(d.Status), d.Attempts.Count,
        d.Status == DeliveryStatus.Pending ? d.NextAttemptAt : null, d.LastError, d.CreatedAt, d.CompletedAt,
        withAttempts ? d.Attempts.Select(AttemptView.From).ToList() : null);
}
