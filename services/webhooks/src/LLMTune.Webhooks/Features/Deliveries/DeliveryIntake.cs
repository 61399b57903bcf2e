using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace LLMTune.Webhooks;

/// <summary>Fans an event out: one delivery per enabled endpoint that wants it, and one to the job's or batch's own webhookUrl.</summary>
public sealed class DeliveryIntake(EndpointStore endpoints, DeliveryStore deliveries, DeliveryHandOff handOff, TimeProvider time, ILogger<DeliveryIntake> logger)
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

        return created;
    }

    /// <summary>A test event for one endpoint.</summary>
    public async Task<WebhookDelivery> AcceptTestAsync(WebhookEndpoint endpoint, CancellationToken ct)
    {
        var e = WebhookEvent.ForTest(endpoint.WorkspaceId, endpoint.Id, time.GetUtcNow().UtcDateTime);
        var delivery = New(e, endpoint.Id, endpoint.Url);
        await StoreAsync(delivery, ct);
        return delivery;
    }

    private async Task<bool> TryCreateAsync(WebhookEvent e, string? endpointId, string url, CancellationToken ct)
    {
        var inserted = await StoreAsync(New(e, endpointId, url), ct);
        if (!inserted)
        {
            logger.LogDebug("Event {EventId} already has a delivery to {Destination}", e.Id, endpointId ?? "its webhookUrl");
        }

        return inserted;
    }

    /// <summary>
    /// Stores a new delivery leased to this process's worker and hands it over when the worker has room (no claim
    /// needed); otherwise stores it due now, for any replica's worker to claim.
    /// </summary>
    private async Task<bool> StoreAsync(WebhookDelivery delivery, CancellationToken ct)
    {
        var lease = handOff.TryReserve();
        if (lease is { } leased)
        {
            delivery.LeaseOwner = leased.Owner;
            delivery.NextAttemptAt = delivery.CreatedAt + leased.Duration;
        }

        bool inserted;
        try
        {
            inserted = await deliveries.TryInsertAsync(delivery, ct);
        }
        catch when (lease is not null)
        {
            handOff.Cancel(); // if the write still lands, the lease expires and any worker claims it
            throw;
        }

        if (lease is null)
        {
            if (inserted)
            {
                handOff.Signal.Wake();
            }
        }
        else if (inserted)
        {
            handOff.Add(delivery);
        }
        else
        {
            handOff.Cancel();
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
    private int _storeHasWork;

    /// <summary>Deliveries due now were stored: the worker looks in the store at once.</summary>
    public void Wake()
    {
        Volatile.Write(ref _storeHasWork, 1);
        Release();
    }

    /// <summary>A delivery was handed over in memory: the worker need not look in the store for it.</summary>
    internal void WakeForHandOff() => Release();

    /// <summary>Whether <see cref="Wake"/> was called since the last time this was asked.</summary>
    internal bool TakeStoreHasWork() => Interlocked.Exchange(ref _storeHasWork, 0) == 1;

    /// <summary>False when the time ran out without a wake-up.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);

    private void Release()
    {
        if (_signal.CurrentCount > 0)
        {
            return; // already signalled (checked first: a throw per delivery is costly under load)
        }

        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // signalled meanwhile
        }
    }
}

/// <summary>
/// New deliveries stored by this process go straight to its worker, leased to it by the insert itself, so a fresh
/// delivery costs no claim (a store query and a write). At most <c>4 × Webhooks:Delivery:Concurrency</c> wait here;
/// past that, new ones are stored due now and claimed from the store in due order, and hand-offs resume only once the
/// worker has caught up, so events about one subject keep their order. Deliveries still waiting when the process dies
/// stay leased until the lease expires; then any replica claims them, as after a crash during an attempt.
/// </summary>
public sealed class DeliveryHandOff(DeliverySignal signal)
{
    private readonly ConcurrentQueue<WebhookDelivery> _ready = new();
    private volatile Lease? _lease;
    private int _limit;

    /// <summary>Reserved by the intake (being inserted) or waiting for the worker.</summary>
    private int _reserved;
    private volatile bool _overflowed;

    public sealed record Lease(string Owner, TimeSpan Duration);

    public DeliverySignal Signal => signal;

    /// <summary>The worker takes hand-offs from now on.</summary>
    internal void Open(string workerId, TimeSpan leaseDuration, int limit)
    {
        _limit = limit;
        _lease = new Lease(workerId, leaseDuration);
    }

    /// <summary>The worker stops: new deliveries are stored due now.</summary>
    internal void Close() => _lease = null;

    /// <summary>The lease to store a new delivery with, or null: store it due now for any worker to claim.</summary>
    public Lease? TryReserve()
    {
        if (_lease is not { } lease || _overflowed)
        {
            return null;
        }

        if (Interlocked.Increment(ref _reserved) > _limit)
        {
            Interlocked.Decrement(ref _reserved);
            _overflowed = true;
            return null;
        }

        return lease;
    }

    /// <summary>A reserved delivery was not stored (a duplicate, or the write failed).</summary>
    public void Cancel() => Interlocked.Decrement(ref _reserved);

    /// <summary>A reserved delivery is stored with its lease: the worker may send it.</summary>
    public void Add(WebhookDelivery delivery)
    {
        _ready.Enqueue(delivery);
        signal.WakeForHandOff();
    }

    internal bool TryTake(out WebhookDelivery delivery)
    {
        if (!_ready.TryDequeue(out delivery!))
        {
            return false;
        }

        Interlocked.Decrement(ref _reserved);
        return true;
    }

    /// <summary>The store had no more due deliveries than the worker asked for: hand-offs can resume without overtaking any.</summary>
    internal void CaughtUp()
    {
        if (Volatile.Read(ref _reserved) == 0)
        {
            _overflowed = false;
        }
    }
}
