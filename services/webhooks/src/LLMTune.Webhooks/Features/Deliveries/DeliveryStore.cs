using System.Linq.Expressions;
using System.Security.Cryptography;
using System.Text;
using LLMTune.Platform.Http;
using LLMTune.Platform.Storage;

namespace LLMTune.Webhooks;

public sealed class DeliveryStore
{
    private readonly IDocumentStore _store;
    private readonly TimeProvider _time;
    private readonly IDocumentCollection<WebhookDelivery> _deliveries;

    /// <summary>New deliveries and attempt outcomes, many per store transaction under load.</summary>
    private readonly GroupCommit<WebhookDelivery> _writes;

    public DeliveryStore(IDocumentStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
        _deliveries = store.Collection<WebhookDelivery>("webhook_deliveries");
        _writes = new GroupCommit<WebhookDelivery>(store, _deliveries);
    }

    public IDocumentCollection<WebhookDelivery> Collection => _deliveries;

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await _deliveries.EnsureIndexAsync(d => d.NextAttemptAt, ct: ct);
        await _deliveries.EnsureIndexAsync(d => d.WorkspaceId, ct: ct);
        await _deliveries.EnsureIndexAsync(d => d.EndpointId, ct: ct);
    }

    /// <summary>Finished deliveries sort after every due time, so claiming walks only the pending part of the index.</summary>
    public static readonly DateTime Never = new(9999, 12, 31, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>The delivery of one event to one destination always has the same id.</summary>
    public static string IdFor(string eventId, string destination) =>
        "whd_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{eventId}|{destination}")))[..32];

    /// <summary>False when this event already has a delivery to this destination (a repeated bus message).</summary>
    public Task<bool> TryInsertAsync(WebhookDelivery delivery, CancellationToken ct) => _writes.InsertAsync(delivery).WaitAsync(ct);

    /// <summary>
    /// Takes up to <paramref name="max"/> of the longest-due pending deliveries in one store transaction (each with the
    /// version it was read at, so a delivery another replica took meanwhile fails the group); after such a conflict,
    /// they are claimed one at a time as <see cref="ClaimAsync(string, TimeSpan, CancellationToken)"/> does.
    /// </summary>
    public async Task<IReadOnlyList<WebhookDelivery>> ClaimManyAsync(string workerId, TimeSpan lease, int max, CancellationToken ct)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var due = await _deliveries.FindAsync(d => d.NextAttemptAt <= now, FindOptions<WebhookDelivery>.OrderBy(d => d.NextAttemptAt).Take(max), ct);
        if (due.Count <= 1)
        {
            return due.Count == 0 ? [] : await ClaimAsync(workerId, lease, ct) is { } one ? [one] : [];
        }

        var batch = new WriteBatch();
        foreach (var d in due)
        {
            d.NextAttemptAt = now + lease;
            d.LeaseOwner = workerId;
            batch.Replace(_deliveries, d);
        }

        try
        {
            await _store.CommitAsync(batch, ct);
            return due;
        }
        catch (Exception e) when (e is ConcurrencyConflictException or DocumentNotFoundException)
        {
            var claimed = new List<WebhookDelivery>();
            while (claimed.Count < due.Count && await ClaimAsync(workerId, lease, ct) is { } next)
            {
                claimed.Add(next);
            }

            return claimed;
        }
    }

    /// <summary>
    /// Atomically takes the longest-due pending delivery for <paramref name="workerId"/>: its due time moves to the end of
    /// the lease, so no other worker's filter matches it until the lease expires (then it is due again, e.g. after a crash).
    /// </summary>
    public Task<WebhookDelivery?> ClaimAsync(string workerId, TimeSpan lease, CancellationToken ct)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        return _deliveries.FindOneAndUpdateAsync(
            // Only the indexed field: finished deliveries are due at Never, so this matches pending due ones alone,
            // and LiteDB walks the index instead of scanning every delivery.
            d => d.NextAttemptAt <= now,
            d =>
            {
                d.NextAttemptAt = now + lease;
                d.LeaseOwner = workerId;
            },
            FindOptions<WebhookDelivery>.OrderBy(d => d.NextAttemptAt), // one key, so the store walks the index instead of sorting
            ct);
    }

    /// <summary>Writes the outcome of an attempt; false when the lease was lost meanwhile (another worker took over).</summary>
    public Task<bool> SaveAsync(WebhookDelivery delivery, CancellationToken ct) => _writes.ReplaceAsync(delivery).WaitAsync(ct);

    public async Task<WebhookDelivery?> GetAsync(string workspaceId, string id, CancellationToken ct) =>
        await _deliveries.GetAsync(id, ct) is { } d && d.WorkspaceId == workspaceId ? d : null;

    /// <summary>Queues a delivery again with a fresh retry schedule (same webhook-id); null when unknown or still pending.</summary>
    public Task<WebhookDelivery?> ResendAsync(string workspaceId, string id, CancellationToken ct)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        return _deliveries.FindOneAndUpdateAsync(d => d.Id == id && d.WorkspaceId == workspaceId && d.Status != DeliveryStatus.Pending, d => Requeue(d, now), null, ct);
    }

    /// <summary>Queues every failed delivery of an endpoint created in [since, until] again; returns how many.</summary>
    public async Task<int> ReplayFailedAsync(string endpointId, DateTime since, DateTime until, CancellationToken ct)
    {
        var failed = await _deliveries.FindAsync(
            d => d.EndpointId == endpointId && d.Status == DeliveryStatus.Failed && d.CreatedAt >= since && d.CreatedAt <= until, null, ct);
        var now = _time.GetUtcNow().UtcDateTime;
        var count = 0;
        foreach (var id in failed.Select(d => d.Id))
        {
            count += await _deliveries.FindOneAndUpdateAsync(d => d.Id == id && d.Status == DeliveryStatus.Failed, d => Requeue(d, now), null, ct) is null ? 0 : 1;
        }

        return count;
    }

    public Task<Page<WebhookDelivery>> ListAsync(string workspaceId, PageRequest page, string? eventType, DeliveryStatus? status, string? endpointId, CancellationToken ct)
    {
        Expression<Func<WebhookDelivery, bool>> filter = d => d.WorkspaceId == workspaceId;
        if (eventType is not null)
        {
            filter = filter.And(d => d.EventType == eventType);
        }

        if (status is { } s)
        {
            filter = filter.And(d => d.Status == s);
        }

        if (endpointId is not null)
        {
            filter = filter.And(d => d.EndpointId == endpointId);
        }

        return _deliveries.FindPageAsync(page, _time, asOf => filter.And(d => d.CreatedAt <= asOf), d => d.CreatedAt, d => d.Id, ct);
    }

    private static void Requeue(WebhookDelivery d, DateTime now)
    {
        d.Status = DeliveryStatus.Pending;
        d.NextAttemptAt = now;
        d.LeaseOwner = null;
        d.CompletedAt = null;
        d.AttemptsBeforeResend = d.Attempts.Count;
    }
}

internal static class Filters
{
    /// <summary>Both conditions, as one predicate the stores can translate.</summary>
    public static Expression<Func<T, bool>> And<T>(this Expression<Func<T, bool>> left, Expression<Func<T, bool>> right)
    {
        var parameter = left.Parameters[0];
        var body = new Rebind(right.Parameters[0], parameter).Visit(right.Body);
        return Expression.Lambda<Func<T, bool>>(Expression.AndAlso(left.Body, body), parameter);
    }

    private sealed class Rebind(ParameterExpression from, ParameterExpression to) : ExpressionVisitor
    {
        protected override Expression VisitParameter(ParameterExpression node) => node == from ? to : base.VisitParameter(node);
    }
}
