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
public sealed class Counters(IDocumentStore store)
{
    private readonly IDocumentCollection<Counter> counters = store.Collection<Counter>(Counter.Collection);

    public Task EnsureIndexesAsync(CancellationToken ct) =>
        counters.EnsureIndexAsync(c => c.ExpiresAt, expireAfter: TimeSpan.Zero, ct: ct);

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

    public async Task<long> ReadAsync(string id, CancellationToken ct) => (await counters.GetAsync(id, ct))?.Count ?? 0;
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
