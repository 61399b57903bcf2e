using LLMTune.Billing.Features.Plans;
using Microsoft.Extensions.Options;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// Requests in flight per key and per workspace: a unit is taken at admission (the same conditional update as every
/// other window) and given back when the response ends, whether it completed, failed, was streamed or was cut short.
/// </summary>
public sealed class ConcurrencyGate(Counters counters, IOptionsMonitor<BillingOptions> options, TimeProvider time)
{
    public const string KeyConcurrent = "key-concurrent";
    public const string Concurrent = "concurrent";

    /// <summary>What the caller holds while its request runs; <see cref="ReleaseAsync"/> gives it back.</summary>
    public sealed record Held(IReadOnlyList<string> CounterIds, IReadOnlyList<LimitState> States)
    {
        /// <summary>The states once this request's units are given back (for the headers of a later refusal).</summary>
        public IReadOnlyList<LimitState> AfterRelease() => States.Select(s => s with { Remaining = Math.Min(s.Limit, s.Remaining + 1) }).ToList();
    }

    public sealed record Refusal(string Message, IReadOnlyList<LimitState> States);

    /// <summary>Takes a unit of the key's and then the workspace's in-flight limit; null when the plan has neither.</summary>
    public async Task<(Held? Held, Refusal? Refused)> TryEnterAsync(string workspaceId, string keyId, PlanLimits limits, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        // Far in the future while requests keep coming; see AdmissionOptions.InFlightExpiry for why it expires at all.
        var expiresAt = now + options.CurrentValue.Admission.InFlightExpiry;
        var gates = new List<(string Name, string CounterId, long Limit, string Message)>();
        if (limits.ConcurrentRequestsPerKey is { } perKey)
        {
            gates.Add((KeyConcurrent, CounterWindows.KeyInFlight(keyId), perKey, $"This key already has {perKey} requests in flight (its concurrency limit)."));
        }

        if (limits.ConcurrentRequests is { } perWorkspace)
        {
            gates.Add((Concurrent, CounterWindows.InFlight(workspaceId), perWorkspace,
                $"The workspace already has {perWorkspace} requests in flight (its concurrency limit)."));
        }

        if (gates.Count == 0)
        {
            return (null, null);
        }

        var taken = new List<string>();
        var states = new List<LimitState>();
        foreach (var gate in gates)
        {
            var (reserved, count) = await counters.TryReserveAsync(gate.CounterId, 1, gate.Limit, expiresAt, extendExpiry: true, ct);
            if (!reserved)
            {
                await ReleaseAsync(taken);
                states.Add(State(gate.Name, gate.Limit, count));
                return (null, new Refusal(gate.Message, states));
            }

            taken.Add(gate.CounterId);
            states.Add(State(gate.Name, gate.Limit, count));
        }

        return (new Held(taken, states), null);
    }

    public async Task ReleaseAsync(IEnumerable<string> counterIds)
    {
        foreach (var id in counterIds)
        {
            await counters.ReleaseAsync(id, CancellationToken.None);
        }
    }

    private LimitState State(string name, long limit, long count) =>
        new(name, LimitUnit.Concurrent, limit, Math.Max(0, limit - count), time.GetUtcNow().UtcDateTime, TimeSpan.Zero);
}
