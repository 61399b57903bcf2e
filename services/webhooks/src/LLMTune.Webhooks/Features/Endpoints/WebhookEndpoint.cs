using LLMTune.Platform.Storage;

namespace LLMTune.Webhooks;

/// <summary>A workspace's subscription: a URL, the events it wants (none listed: all) and its signing secrets.</summary>
public sealed class WebhookEndpoint : IDocument
{
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string Url { get; set; } = "";
    public List<string> Events { get; set; } = [];
    public string? Description { get; set; }
    public bool Enabled { get; set; } = true;
    public string? DisabledReason { get; set; }
    public DateTime? DisabledAt { get; set; }
    public List<SigningKey> Keys { get; set; } = [];

    /// <summary>When the current run of failed attempts began (cleared by a success); long enough and the endpoint is disabled.</summary>
    public DateTime? FailingSince { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }

    public bool Wants(string eventType) => Events.Count == 0 || Events.Contains(eventType);
}

public sealed class EndpointStore(IDocumentStore store, TimeProvider time)
{
    private readonly IDocumentCollection<WebhookEndpoint> _endpoints = store.Collection<WebhookEndpoint>("webhook_endpoints");

    public IDocumentCollection<WebhookEndpoint> Collection => _endpoints;

    public Task EnsureIndexesAsync(CancellationToken ct) => _endpoints.EnsureIndexAsync(e => e.WorkspaceId, ct: ct);

    public Task InsertAsync(WebhookEndpoint endpoint, CancellationToken ct) => _endpoints.InsertAsync(endpoint, ct);

    public Task<WebhookEndpoint?> GetAsync(string id, CancellationToken ct) => _endpoints.GetAsync(id, ct);

    /// <summary>The workspace's endpoint, or null for unknown ids and other workspaces' endpoints (both answer 404).</summary>
    public async Task<WebhookEndpoint?> GetAsync(string workspaceId, string id, CancellationToken ct) =>
        await _endpoints.GetAsync(id, ct) is { } e && e.WorkspaceId == workspaceId ? e : null;

    public Task<IReadOnlyList<WebhookEndpoint>> EnabledAsync(string workspaceId, CancellationToken ct) =>
        _endpoints.FindAsync(e => e.WorkspaceId == workspaceId && e.Enabled, null, ct);

    /// <summary>Applies a change atomically to the workspace's endpoint; null when it is not there.</summary>
    public Task<WebhookEndpoint?> UpdateAsync(string workspaceId, string id, Action<WebhookEndpoint> change, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return _endpoints.FindOneAndUpdateAsync(e => e.Id == id && e.WorkspaceId == workspaceId, e =>
        {
            change(e);
            e.UpdatedAt = now;
        }, null, ct);
    }

    /// <summary>A success ends a run of failures.</summary>
    public Task MarkSucceededAsync(string id, CancellationToken ct) =>
        _endpoints.FindOneAndUpdateAsync(e => e.Id == id && e.FailingSince != null, e => e.FailingSince = null, null, ct);

    /// <summary>Records a failed attempt; disables the endpoint once it has failed for <paramref name="disableAfter"/>. True when disabled now.</summary>
    public async Task<bool> MarkFailedAsync(string id, DateTime now, TimeSpan disableAfter, CancellationToken ct)
    {
        var updated = await _endpoints.FindOneAndUpdateAsync(e => e.Id == id && e.Enabled, e =>
        {
            e.FailingSince ??= now;
            if (now - e.FailingSince >= disableAfter)
            {
                Disable(e, now, $"Every delivery failed for {disableAfter.TotalDays:0.#} days.");
            }
        }, null, ct);
        return updated is { Enabled: false };
    }

    public Task DisableAsync(string id, DateTime now, string reason, CancellationToken ct) =>
        _endpoints.FindOneAndUpdateAsync(e => e.Id == id && e.Enabled, e => Disable(e, now, reason), null, ct);

    public Task<Platform.Http.Page<WebhookEndpoint>> ListAsync(string workspaceId, Platform.Http.PageRequest page, CancellationToken ct) =>
        Platform.Http.PagedQueries.FindPageAsync(_endpoints, page, time, asOf => e => e.WorkspaceId == workspaceId && e.CreatedAt <= asOf, e => e.CreatedAt, e => e.Id, ct);

    public Task<bool> DeleteAsync(string id, CancellationToken ct) => _endpoints.DeleteAsync(id, ct);

    private static void Disable(WebhookEndpoint e, DateTime now, string reason)
    {
        e.Enabled = false;
        e.DisabledAt = now;
        e.DisabledReason = reason;
        e.UpdatedAt = now;
    }
}
