using LLMTune.Billing.Features.Plans;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// Counted requests: the key's and the workspace's minute (rate), the month (quota) and, for a new fine-tune, the
/// month's fine-tunes. Each is a reservation in the store; a request refused by a later window gives back what it
/// took in the earlier ones, so refused requests never use anything up.
/// </summary>
public sealed class RequestWindows(Counters counters, TimeProvider time)
{
    public const string Monthly = "monthly";
    public const string Minute = "minute";
    public const string KeyMinute = "key-minute";
    public const string MonthlyFineTunes = "monthly-fine-tunes";

    public sealed record Window(string Name, string CounterId, long? Limit, DateTime Start, DateTime End, string RefusalCode, string Refusal);

    public sealed record Taken(IReadOnlyList<string> CounterIds, IReadOnlyList<LimitState> States, bool TookLastOfMonth, string? FineTuneCounterId);

    public sealed record Refusal(Window Window, IReadOnlyList<LimitState> States);

    public async Task<(Taken? Taken, Refusal? Refused)> TryTakeAsync(
        string workspaceId, string keyId, string plan, PlanLimits limits, bool createsFineTune, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var windows = WindowsOf(workspaceId, keyId, plan, limits, createsFineTune, now);
        var taken = new List<(Window Window, long Count)>();
        var tookLast = false;
        foreach (var window in windows)
        {
            // Unlimited windows still count, so the month's usage can be shown; they just never refuse.
            var (reserved, count) = await counters.TryReserveAsync(window.CounterId, window.Limit ?? long.MaxValue, window.End, ct);
            if (!reserved)
            {
                await ReleaseAsync(taken.Select(t => t.Window.CounterId));
                // What the others stand at now that this request gave them back.
                var states = taken.Select(t => State(t.Window, t.Count - 1)).ToList();
                states.Add(State(window, count));
                foreach (var rest in windows.Skip(taken.Count + 1))
                {
                    states.Add(State(rest, await counters.ReadAsync(rest.CounterId, ct)));
                }

                return (null, new Refusal(window, states.Where(Reported).ToList()));
            }

            taken.Add((window, count));
            // Only one request can take the month's last unit.
            tookLast |= window.Name == Monthly && count == window.Limit;
        }

        return (new Taken(
            taken.Select(t => t.Window.CounterId).ToList(),
            taken.Select(t => State(t.Window, t.Count)).Where(Reported).ToList(),
            tookLast,
            createsFineTune ? windows[^1].CounterId : null), null);
    }

    /// <summary>This month's counted requests and created fine-tunes (for <c>GET /v1/billing</c>).</summary>
    public async Task<(long Requests, long FineTunes)> MonthAsync(string workspaceId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return (await counters.ReadAsync(CounterWindows.MonthlyRequests(workspaceId, now), ct),
            await counters.ReadAsync(CounterWindows.MonthlyFineTunes(workspaceId, now), ct));
    }

    public async Task ReleaseAsync(IEnumerable<string> counterIds)
    {
        foreach (var id in counterIds)
        {
            await counters.ReleaseAsync(id, CancellationToken.None);
        }
    }

    private static List<Window> WindowsOf(string workspaceId, string keyId, string plan, PlanLimits limits, bool createsFineTune, DateTimeOffset now)
    {
        var windows = new List<Window>
        {
            new(KeyMinute, CounterWindows.KeyMinute(keyId, now), limits.RequestsPerMinutePerKey, CounterWindows.MinuteStart(now), CounterWindows.MinuteEnd(now),
                "rate_limited", $"Requests per minute limit of this key ({limits.RequestsPerMinutePerKey}) reached."),
            new(Minute, CounterWindows.WorkspaceMinute(workspaceId, now), limits.RequestsPerMinute, CounterWindows.MinuteStart(now), CounterWindows.MinuteEnd(now),
                "rate_limited", $"Requests per minute limit of the workspace ({limits.RequestsPerMinute}) reached."),
            new(Monthly, CounterWindows.MonthlyRequests(workspaceId, now), limits.MonthlyRequests, CounterWindows.MonthStart(now), CounterWindows.MonthEnd(now),
                "quota_exceeded", $"This month's request quota ({limits.MonthlyRequests}) is used up. It resets on the 1st (UTC); upgrade your plan for more."),
        };
        if (createsFineTune)
        {
            windows.Add(new Window(MonthlyFineTunes, CounterWindows.MonthlyFineTunes(workspaceId, now), limits.MonthlyFineTunes,
                CounterWindows.MonthStart(now), CounterWindows.MonthEnd(now), "quota_exceeded",
                $"This month's fine-tune quota of the {plan} plan ({limits.MonthlyFineTunes}) is used up."));
        }

        return windows;
    }

    /// <summary>The rate-limit headers describe requests and tokens; the fine-tune quota shows in GET /v1/billing.</summary>
    private static bool Reported(LimitState state) => state.Name != MonthlyFineTunes && state.Limit != long.MaxValue;

    private static LimitState State(Window window, long count)
    {
        var limit = window.Limit ?? long.MaxValue;
        return new(window.Name, LimitUnit.Requests, limit, Math.Max(0, limit - count), window.End, window.End - window.Start);
    }
}
