using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Admission;

/// <summary>One counting window (a month or a minute) of one workspace or key; shared by every gateway replica.</summary>
public sealed class Counter : IDocument
{
    public const string Collection = "billing_counters";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public long Count { get; set; }

    /// <summary>When the window is over and the document may go (TTL index).</summary>
    public DateTime ExpiresAt { get; set; }
}

/// <summary>
/// Counters in the document store. A reservation is not a check-then-record: the store's conditional update
/// (<c>Count + amount &lt;= limit</c>, then <c>Count + amount</c>) is atomic, so concurrent requests on any number of
/// replicas never take more than the limit.
/// </summary>
/// <remarks>
/// On a store that is the only writer of its data (the embedded one-process store, <see cref="IDocumentStore.IsExclusive"/>)
/// the counts live in memory next to it (<see cref="ExclusiveCounters"/>): a reservation is a lock and an add, exact
/// because nothing else writes them, and changed counts are written behind every second and on shutdown. Shared stores
/// (MongoDB, replicas) take one atomic update per reservation.
/// </remarks>
public sealed class Counters(IDocumentStore store, TimeProvider time)
{
    private readonly IDocumentCollection<Counter> counters = store.Collection<Counter>(Counter.Collection);
    private readonly ExclusiveCounters? exclusive = store.IsExclusive ? ExclusiveCounters.For(store, time) : null;

    public Task EnsureIndexesAsync(CancellationToken ct) =>
        counters.EnsureIndexAsync(c => c.ExpiresAt, expireAfter: TimeSpan.Zero, ct: ct);

    /// <summary>Writes counts held in memory to the store now (on shutdown); nothing to do on shared stores.</summary>
    public Task FlushAsync(CancellationToken ct) => exclusive?.FlushAsync(ct) ?? Task.CompletedTask;

    /// <summary>Takes one unit if fewer than <paramref name="limit"/> are taken; returns whether it did and the count after.</summary>
    public Task<(bool Reserved, long Count)> TryReserveAsync(string id, long limit, DateTime expiresAt, CancellationToken ct) =>
        TryReserveAsync(id, 1, limit, expiresAt, extendExpiry: false, ct);

    /// <summary>
    /// Takes <paramref name="amount"/> units if the count stays within <paramref name="limit"/> (one conditional update,
    /// atomic in the store); returns whether it did and the count after (or as it stands when refused). With
    /// <paramref name="extendExpiry"/> the window's expiry moves to <paramref name="expiresAt"/> in the same write.
    /// </summary>
    public async Task<(bool Reserved, long Count)> TryReserveAsync(
        string id, long amount, long limit, DateTime expiresAt, bool extendExpiry, CancellationToken ct)
    {
        if (exclusive is not null)
        {
            return await exclusive.TryReserveAsync(id, amount, limit, expiresAt, extendExpiry, ct);
        }

        var most = limit - amount;
        while (true)
        {
            var taken = await counters.FindOneAndUpdateAsync(c => c.Id == id && c.Count <= most, c =>
            {
                c.Count += amount;
                if (extendExpiry && c.ExpiresAt < expiresAt)
                {
                    c.ExpiresAt = expiresAt;
                }
            }, null, ct);
            if (taken is not null)
            {
                return (true, taken.Count);
            }

            if (await counters.GetAsync(id, ct) is { } full)
            {
                return (false, full.Count);
            }

            if (amount > limit)
            {
                return (false, 0);
            }

            try
            {
                await counters.InsertAsync(new Counter { Id = id, Count = amount, ExpiresAt = expiresAt }, ct);
                return (true, amount);
            }
            catch (DuplicateDocumentException)
            {
                // Another request opened the window first: take from it like everyone else.
            }
        }
    }

    /// <summary>Gives back a unit reserved by a request that turned out not to count (e.g. a fine-tune that was not created).</summary>
    public Task ReleaseAsync(string id, CancellationToken ct) => AdjustAsync(id, -1, ct);

    /// <summary>
    /// Corrects a window that is still open by <paramref name="delta"/> (a settled reservation: actual minus reserved);
    /// a window that has expired meanwhile is left alone.
    /// </summary>
    public async Task AdjustAsync(string id, long delta, CancellationToken ct)
    {
        if (delta == 0)
        {
            return;
        }

        if (exclusive is not null)
        {
            await exclusive.AdjustAsync(id, delta, ct);
            return;
        }

        try
        {
            await counters.IncrementAsync(id, c => c.Count, delta, ct);
        }
        catch (DocumentNotFoundException)
        {
            // The window expired meanwhile: nothing left to correct.
        }
    }

    /// <summary>Adds to a window whatever its count (settled usage such as tokens); returns the count after.</summary>
    public async Task<long> AddAsync(string id, long amount, DateTime expiresAt, CancellationToken ct)
    {
        if (exclusive is not null)
        {
            return await exclusive.AddAsync(id, amount, expiresAt, ct);
        }

        while (true)
        {
            try
            {
                return await counters.IncrementAsync(id, c => c.Count, amount, ct);
            }
            catch (DocumentNotFoundException)
            {
                try
                {
                    await counters.InsertAsync(new Counter { Id = id, Count = amount, ExpiresAt = expiresAt }, ct);
                    return amount;
                }
                catch (DuplicateDocumentException)
                {
                    // Opened concurrently: increment it on the next pass.
                }
            }
        }
    }

    public async Task<long> ReadAsync(string id, CancellationToken ct) =>
        exclusive is not null ? await exclusive.ReadAsync(id, ct) : (await counters.GetAsync(id, ct))?.Count ?? 0;
}

/// <summary>
/// The counters of one exclusive store, in memory: loaded from the store on first use, changed under a per-counter
/// lock, written behind (changed counts every <see cref="FlushInterval"/>, and on shutdown), dropped from memory once
/// their window is over. One instance per store object, so hosts sharing a store share the counts. A crash loses at
/// most the last interval's counting, never a refusal's correctness while the process runs.
/// </summary>
internal sealed class ExclusiveCounters
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IDocumentStore, ExclusiveCounters> ByStore = [];

    private readonly IDocumentCollection<Counter> _store;
    private readonly TimeProvider _time;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushing = new(1, 1);

    private ExclusiveCounters(IDocumentStore store, TimeProvider time)
    {
        _store = store.Collection<Counter>(Counter.Collection);
        _time = time;
        _ = FlushPeriodicallyAsync();
    }

    public static ExclusiveCounters For(IDocumentStore store, TimeProvider time) => ByStore.GetValue(store, s => new ExclusiveCounters(s, time));

    public async Task<(bool Reserved, long Count)> TryReserveAsync(
        string id, long amount, long limit, DateTime expiresAt, bool extendExpiry, CancellationToken ct)
    {
        while (true)
        {
            var entry = await EntryAsync(id, ct);
            lock (entry)
            {
                if (entry.Dropped)
                {
                    continue;
                }

                if (entry.Count > limit - amount)
                {
                    return (false, entry.Count);
                }

                entry.Open(expiresAt);
                if (extendExpiry && entry.ExpiresAt < expiresAt)
                {
                    entry.ExpiresAt = expiresAt;
                }

                return (true, entry.Count += amount);
            }
        }
    }

    public async Task AdjustAsync(string id, long delta, CancellationToken ct)
    {
        var entry = await EntryAsync(id, ct);
        lock (entry)
        {
            if (entry.Opened && !entry.Dropped)
            {
                entry.Count += delta;
            }
        }
    }

    public async Task<long> AddAsync(string id, long amount, DateTime expiresAt, CancellationToken ct)
    {
        while (true)
        {
            var entry = await EntryAsync(id, ct);
            lock (entry)
            {
                if (entry.Dropped)
                {
                    continue;
                }

                entry.Open(expiresAt);
                return entry.Count += amount;
            }
        }
    }

    public async Task<long> ReadAsync(string id, CancellationToken ct)
    {
        var entry = await EntryAsync(id, ct);
        lock (entry)
        {
            return entry.Count;
        }
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        await _flushing.WaitAsync(ct);
        try
        {
            var now = _time.GetUtcNow().UtcDateTime;
            foreach (var (id, loading) in _entries)
            {
                if (!loading.IsCompletedSuccessfully)
                {
                    continue;
                }

                var entry = loading.Result;
                long count;
                bool inStore;
                lock (entry)
                {
                    count = entry.Count;
                    inStore = entry.InStore;
                    if (entry.Opened && entry.ExpiresAt <= now)
                    {
                        // The window is over: nothing counts in it any more, and the store's TTL sweep removes it.
                        entry.Dropped = true;
                    }
                }

                if (entry.Dropped)
                {
                    _entries.TryRemove(new KeyValuePair<string, Task<Entry>>(id, loading));
                }

                if (!entry.Opened || (inStore && count == entry.Persisted))
                {
                    continue;
                }

                await WriteAsync(entry, count, inStore, ct);
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    private async Task WriteAsync(Entry entry, long count, bool inStore, CancellationToken ct)
    {
        try
        {
            if (!inStore)
            {
                await _store.InsertAsync(new Counter { Id = entry.Id, Count = count, ExpiresAt = entry.ExpiresAt }, ct);
                entry.InStore = true;
            }
            else
            {
                await _store.IncrementAsync(entry.Id, c => c.Count, count - entry.Persisted, ct);
            }

            entry.Persisted = count;
        }
        catch (DuplicateDocumentException)
        {
            // Written by a store user that does not go through these counters: count from what it holds next time.
            entry.InStore = true;
        }
        catch (DocumentNotFoundException)
        {
            // Swept after its window ended: nothing left to keep.
            entry.InStore = false;
            entry.Persisted = 0;
        }
    }

    private Task<Entry> EntryAsync(string id, CancellationToken ct)
    {
        if (_entries.TryGetValue(id, out var entry) && !entry.IsFaulted && !entry.IsCanceled)
        {
            return entry;
        }

        var loading = LoadAsync(id, ct);
        return _entries.AddOrUpdate(id, loading, (_, existing) => existing.IsFaulted || existing.IsCanceled ? loading : existing);
    }

    private async Task<Entry> LoadAsync(string id, CancellationToken ct)
    {
        var stored = await _store.GetAsync(id, ct);
        return stored is null
            ? new Entry(id)
            : new Entry(id) { Count = stored.Count, Persisted = stored.Count, ExpiresAt = stored.ExpiresAt, InStore = true, Opened = true };
    }

    private async Task FlushPeriodicallyAsync()
    {
        using var timer = new PeriodicTimer(FlushInterval);
        var failures = 0;
        while (failures < 30 && await timer.WaitForNextTickAsync())
        {
            try
            {
                await FlushAsync(CancellationToken.None);
                failures = 0;
            }
            catch (ObjectDisposedException)
            {
                return; // the store was closed (its host stopped after its final flush)
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The store is briefly unavailable: the counts stay in memory and go out on a later tick. A store that
                // keeps failing for half a minute has been closed under us.
                failures++;
            }
        }
    }

    /// <summary>One counter; guarded by locking the entry itself.</summary>
    private sealed class Entry(string id)
    {
        public string Id { get; } = id;
        public long Count { get; set; }
        public long Persisted { get; set; }
        public DateTime ExpiresAt { get; set; }
        public bool InStore { get; set; }

        /// <summary>The window exists (in the store, or opened in memory by a reservation or an addition).</summary>
        public bool Opened { get; set; }

        /// <summary>Removed from memory: callers holding it look it up again.</summary>
        public bool Dropped { get; set; }

        public void Open(DateTime expiresAt)
        {
            if (!Opened)
            {
                Opened = true;
                ExpiresAt = expiresAt;
            }
        }
    }
}

/// <summary>Counter ids and window bounds, all in UTC.</summary>
public static class CounterWindows
{
    public static DateTime MonthStart(DateTimeOffset now) => new(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc);

    public static DateTime MonthEnd(DateTimeOffset now) => MonthStart(now).AddMonths(1);

    public static DateTime MinuteStart(DateTimeOffset now) => new(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, DateTimeKind.Utc);

    public static DateTime MinuteEnd(DateTimeOffset now) => MinuteStart(now).AddMinutes(1);

    private static string Id(FormattableString id) => FormattableString.Invariant(id);

    public static string MonthlyRequests(string workspaceId, DateTimeOffset now) => Id($"req:{workspaceId}:{now:yyyy-MM}");

    public static string MonthlyFineTunes(string workspaceId, DateTimeOffset now) => Id($"ft:{workspaceId}:{now:yyyy-MM}");

    public static string WorkspaceMinute(string workspaceId, DateTimeOffset now) => Id($"rpm:{workspaceId}:{now:yyyyMMddHHmm}");

    public static string KeyMinute(string keyId, DateTimeOffset now) => Id($"rpk:{keyId}:{now:yyyyMMddHHmm}");

    public static string TokensMinute(string workspaceId, DateTimeOffset now) => Id($"tpm:{workspaceId}:{now:yyyyMMddHHmm}");

    public static string KeyTokensMinute(string keyId, DateTimeOffset now) => Id($"tpk:{keyId}:{now:yyyyMMddHHmm}");

    /// <summary>Requests in flight: not a time window, the count goes up at admission and down when the response ends.</summary>
    public static string InFlight(string workspaceId) => Id($"cc:{workspaceId}");

    public static string KeyInFlight(string keyId) => Id($"cck:{keyId}");
}
