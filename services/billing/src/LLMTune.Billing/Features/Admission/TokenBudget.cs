using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// The tokens an admitted inference request reserved, keyed by its usage id (the server's, unique per request), until <c>InferenceCompleted</c> settles
/// them to what it used (or the gateway gives them back when no inference ran). Whoever marks it settled settles it,
/// once; it stays until its TTL, so a redelivered <c>InferenceCompleted</c> finds it settled and counts nothing again.
/// </summary>
public sealed class TokenReservation : IDocument
{
    public const string Collection = "billing_token_reservations";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public long Tokens { get; set; }

    /// <summary>The token windows (the key's and the workspace's minute) the tokens were taken from.</summary>
    public List<string> CounterIds { get; set; } = [];

    public bool Settled { get; set; }

    /// <summary>After this the windows are gone anyway (TTL index).</summary>
    public DateTime ExpiresAt { get; set; }
}

/// <summary>
/// Tokens per minute, per key and per workspace. An inference request reserves its worst case (a bound on its prompt
/// tokens plus its completion cap) in one conditional update per window before it runs, so concurrent requests can
/// never together pass the limit; the reservation is settled to the actual count when the request completes.
/// Requests that run no inference take no tokens and are not refused by these limits.
/// </summary>
/// <remarks>
/// On a store that is the only writer of its data (<see cref="IDocumentStore.IsExclusive"/>) reservations are kept in
/// memory beside the in-memory counts they were taken from (<see cref="ExclusiveReservations"/>): they live only while
/// their request runs and the minute after, and a crash loses them with the last second of those counts. A settlement
/// that finds none then adds the actual use, as for a batch item. Shared stores keep them as documents.
/// </remarks>
public sealed class TokenBudget(Counters counters, IDocumentStore store, TimeProvider time)
{
    public const string KeyTokensMinute = "key-tokens-minute";
    public const string TokensMinute = "tokens-minute";

    private readonly IDocumentCollection<TokenReservation> reservations = store.Collection<TokenReservation>(TokenReservation.Collection);
    private readonly ExclusiveReservations? inMemory = store.IsExclusive ? ExclusiveReservations.For(store) : null;

    public sealed record Refusal(string Message, DateTime ResetAt, IReadOnlyList<LimitState> States);

    public Task EnsureIndexesAsync(CancellationToken ct) =>
        reservations.EnsureIndexAsync(r => r.ExpiresAt, expireAfter: TimeSpan.Zero, ct: ct);

    /// <summary>
    /// Reserves <paramref name="tokens"/> in the key's and then the workspace's minute (nothing when null: no inference);
    /// returns the windows' states for the headers, or the refusal.
    /// </summary>
    public async Task<(IReadOnlyList<LimitState> States, Refusal? Refused)> TryReserveAsync(
        string workspaceId, string keyId, string usageId, long? tokens, PlanLimits limits, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var end = CounterWindows.MinuteEnd(now);
        var windows = Windows(workspaceId, keyId, limits, now);
        var states = new List<LimitState>();
        if (tokens is not { } amount)
        {
            foreach (var window in windows.Where(w => w.Limit is not null))
            {
                states.Add(State(window, await counters.ReadAsync(window.CounterId, ct), end));
            }

            return (states, null);
        }

        var taken = new List<string>();
        foreach (var window in windows)
        {
            // An unlimited window still counts, so its reservation settles like the others.
            var limit = window.Limit ?? Unlimited;
            var (reserved, count) = await counters.TryReserveAsync(window.CounterId, amount, limit, end, extendExpiry: false, ct);
            if (!reserved)
            {
                foreach (var id in taken)
                {
                    await counters.AdjustAsync(id, -amount, CancellationToken.None);
                }

                // The windows taken before stand as they were, now that this request gave them back.
                states = states.Select(s => s with { Remaining = Math.Min(s.Limit, s.Remaining + amount) }).ToList();
                states.Add(State(window, count, end));
                var message = amount > limit
                    ? $"This request may use up to {amount} tokens (prompt and max_tokens), more than the {window.Message} of {limit}; lower max_tokens or shorten the prompt."
                    : $"The {window.Message} of {limit} is reached for this minute (this request reserves up to {amount} tokens).";
                return (states, new Refusal(message, end, states));
            }

            taken.Add(window.CounterId);
            if (window.Limit is not null)
            {
                states.Add(State(window, count, end));
            }
        }

        // Even without a tokens limit the reservation is kept: settlement then only counts the actual usage.
        var reservation = new TokenReservation { Id = usageId, Tokens = amount, CounterIds = taken, ExpiresAt = end.AddMinutes(1) };
        if (inMemory is not null)
        {
            inMemory.Add(reservation, now.UtcDateTime);
        }
        else
        {
            await reservations.InsertAsync(reservation, ct);
        }

        return (states, null);
    }

    /// <summary>
    /// Settles a completed request: its windows get actual minus reserved. Without a reservation (a batch item, a
    /// request admitted before the limit existed, or one the gateway already gave back) the actual tokens are added to
    /// the minute the request completed in.
    /// </summary>
    public async Task SettleAsync(string workspaceId, string keyId, string usageId, long actual, DateTimeOffset completedAt, CancellationToken ct)
    {
        var reservation = inMemory is not null
            ? inMemory.TrySettle(usageId)
            : await reservations.FindOneAndUpdateAsync(r => r.Id == usageId && r.Settled == false, r => r.Settled = true, null, ct);
        if (reservation is not null)
        {
            foreach (var id in reservation.CounterIds)
            {
                await counters.AdjustAsync(id, actual - reservation.Tokens, ct);
            }

            return;
        }

        var end = CounterWindows.MinuteEnd(completedAt);
        // Settled already (a redelivery) when it exists; otherwise this marks the count below as done.
        var marker = new TokenReservation { Id = usageId, Settled = true, ExpiresAt = end.AddMinutes(1) };
        if (inMemory is not null)
        {
            if (!inMemory.Add(marker, time.GetUtcNow().UtcDateTime))
            {
                return;
            }
        }
        else
        {
            try
            {
                await reservations.InsertAsync(marker, ct);
            }
            catch (DuplicateDocumentException)
            {
                return;
            }
        }

        if (actual <= 0)
        {
            return;
        }

        await counters.AddAsync(CounterWindows.KeyTokensMinute(keyId, completedAt), actual, end, ct);
        await counters.AddAsync(CounterWindows.TokensMinute(workspaceId, completedAt), actual, end, ct);
    }

    /// <summary>Gives a reservation back in full: the request ran no inference (it was refused or failed before).</summary>
    public async Task CancelAsync(string usageId)
    {
        var reservation = inMemory is not null
            ? inMemory.Remove(usageId)
            : await reservations.GetAsync(usageId, CancellationToken.None) is { } stored && await reservations.DeleteAsync(usageId, CancellationToken.None)
                ? stored
                : null;
        if (reservation is not null)
        {
            foreach (var id in reservation.CounterIds)
            {
                await counters.AdjustAsync(id, -reservation.Tokens, CancellationToken.None);
            }
        }
    }

    private const long Unlimited = long.MaxValue / 2;

    private sealed record Window(string Name, string CounterId, long? Limit, string Message);

    private static List<Window> Windows(string workspaceId, string keyId, PlanLimits limits, DateTimeOffset now) =>
    [
        new(KeyTokensMinute, CounterWindows.KeyTokensMinute(keyId, now), limits.TokensPerMinutePerKey, "key's tokens per minute limit"),
        new(TokensMinute, CounterWindows.TokensMinute(workspaceId, now), limits.TokensPerMinute, "workspace's tokens per minute limit"),
    ];

    private static LimitState State(Window window, long count, DateTime end) =>
        new(window.Name, LimitUnit.Tokens, window.Limit ?? Unlimited, Math.Max(0, (window.Limit ?? Unlimited) - count), end, TimeSpan.FromMinutes(1));
}

/// <summary>
/// The token reservations of an exclusive store, in memory (see <see cref="TokenBudget"/>'s remarks); one set per store
/// object, so hosts sharing a store share it. Entries go once their minute and the one after are over.
/// </summary>
internal sealed class ExclusiveReservations
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(10);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IDocumentStore, ExclusiveReservations> ByStore = [];

    private readonly Dictionary<string, TokenReservation> _byId = new(StringComparer.Ordinal);
    private DateTime _nextSweep;

    public static ExclusiveReservations For(IDocumentStore store) => ByStore.GetValue(store, _ => new ExclusiveReservations());

    /// <summary>False when the id is taken (a settled marker or a reservation).</summary>
    public bool Add(TokenReservation reservation, DateTime now)
    {
        lock (_byId)
        {
            if (now >= _nextSweep)
            {
                foreach (var expired in _byId.Values.Where(r => r.ExpiresAt <= now).Select(r => r.Id).ToList())
                {
                    _byId.Remove(expired);
                }

                _nextSweep = now + SweepInterval;
            }

            return _byId.TryAdd(reservation.Id, reservation);
        }
    }

    /// <summary>The reservation, marked settled; null when there is none or it was settled already.</summary>
    public TokenReservation? TrySettle(string id)
    {
        lock (_byId)
        {
            if (!_byId.TryGetValue(id, out var reservation) || reservation.Settled)
            {
                return null;
            }

            reservation.Settled = true;
            return reservation;
        }
    }

    public TokenReservation? Remove(string id)
    {
        lock (_byId)
        {
            return _byId.Remove(id, out var reservation) ? reservation : null;
        }
    }
}
