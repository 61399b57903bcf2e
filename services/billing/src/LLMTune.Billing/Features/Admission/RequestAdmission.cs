using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Billing.Features.Admission;

/// <summary>What an admitted request holds: the limits to report and the fine-tune reservation to give back if no job is created.</summary>
public sealed record Admitted(IReadOnlyList<LimitState> Limits, DateTimeOffset At, string? FineTuneReservation);

/// <summary>
/// Decides, before a request runs, whether its workspace and key may make it: a positive balance on prepaid plans,
/// then a reservation in each counting window (per-key minute, workspace minute, month, and for a new fine-tune the
/// month's fine-tunes), then the settled tokens of this minute. A request refused by a later window gives back what it
/// reserved in the earlier ones, so refused requests never use up anything.
/// </summary>
public sealed class RequestAdmission(Counters counters, Balances accounts, PlanCatalog plans, AccountStatusPublisher status, TimeProvider time)
{
    public const string Monthly = "monthly";
    public const string Minute = "minute";
    public const string KeyMinute = "key-minute";
    public const string TokensMinute = "tokens-minute";
    public const string MonthlyFineTunes = "monthly-fine-tunes";

    private sealed record Window(string Name, string CounterId, long? Limit, DateTime Start, DateTime End, string RefusalCode, string Refusal);

    public async Task<Admitted> AdmitAsync(string workspaceId, string keyId, bool createsFineTune, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var (plan, limits) = await plans.ForWorkspaceAsync(workspaceId, ct);
        if (limits.Prepaid && await accounts.BalanceMicrosAsync(workspaceId, ct) <= 0)
        {
            throw new ApiException(StatusCodes.Status402PaymentRequired, "insufficient_credits",
                $"The workspace's balance is used up ({plan} plan). Top up your balance to continue.");
        }

        var windows = RequestWindows(workspaceId, keyId, limits, now);
        if (createsFineTune)
        {
            windows.Add(new Window(MonthlyFineTunes, CounterWindows.MonthlyFineTunes(workspaceId, now), limits.MonthlyFineTunes,
                CounterWindows.MonthStart(now), CounterWindows.MonthEnd(now), "quota_exceeded",
                $"This month's fine-tune quota of the {plan} plan ({limits.MonthlyFineTunes}) is used up."));
        }

        var taken = new List<(Window Window, long Count)>();
        foreach (var window in windows)
        {
            // Unlimited windows still count, so the month's usage can be shown; they just never refuse.
            var (reserved, count) = await counters.TryReserveAsync(window.CounterId, window.Limit ?? long.MaxValue, window.End, ct);
            if (!reserved)
            {
                await ReleaseAsync(taken.Select(t => t.Window));
                throw await RefusalAsync(window, windows, workspaceId, limits, now, ct);
            }

            taken.Add((window, count));
            if (window.Name == Monthly && count == window.Limit)
            {
                // This request took the month's last unit; only one request can.
                await status.PublishAsync(workspaceId, AccountStatus.QuotaExhausted, ct);
            }
        }

        var tokens = await TokensAsync(workspaceId, limits, now, ct);
        if (tokens is { Remaining: <= 0 })
        {
            await ReleaseAsync(taken.Select(t => t.Window));
            var states = await StatesAsync(windows, ct);
            throw Refused(states.Append(tokens).ToList(), tokens.ResetAt, now, "rate_limited",
                $"Tokens per minute limit of the {plan} plan ({tokens.Limit}) reached.");
        }

        var limitStates = taken
            .Where(t => t.Window.Limit is not null && t.Window.Name != MonthlyFineTunes)
            .Select(t => State(t.Window, t.Count))
            .ToList();
        if (tokens is not null)
        {
            limitStates.Add(tokens);
        }

        return new Admitted(limitStates, now, createsFineTune ? windows[^1].CounterId : null);
    }

    /// <summary>Gives back the fine-tune reservation of a request that did not create a job.</summary>
    public Task ReleaseFineTuneAsync(string counterId) => counters.ReleaseAsync(counterId, CancellationToken.None);

    private static List<Window> RequestWindows(string workspaceId, string keyId, PlanLimits limits, DateTimeOffset now) =>
    [
        new(KeyMinute, CounterWindows.KeyMinute(keyId, now), limits.RequestsPerMinutePerKey, CounterWindows.MinuteStart(now), CounterWindows.MinuteEnd(now),
            "rate_limited", $"Requests per minute limit of this key ({limits.RequestsPerMinutePerKey}) reached."),
        new(Minute, CounterWindows.WorkspaceMinute(workspaceId, now), limits.RequestsPerMinute, CounterWindows.MinuteStart(now), CounterWindows.MinuteEnd(now),
            "rate_limited", $"Requests per minute limit of the workspace ({limits.RequestsPerMinute}) reached."),
        new(Monthly, CounterWindows.MonthlyRequests(workspaceId, now), limits.MonthlyRequests, CounterWindows.MonthStart(now), CounterWindows.MonthEnd(now),
            "quota_exceeded", $"This month's request quota ({limits.MonthlyRequests}) is used up. It resets on the 1st (UTC); upgrade your plan for more."),
    ];

    private async Task<ApiException> RefusalAsync(
        Window refused, IReadOnlyList<Window> windows, string workspaceId, PlanLimits limits, DateTimeOffset now, CancellationToken ct)
    {
        var states = await StatesAsync(windows, ct);
        if (await TokensAsync(workspaceId, limits, now, ct) is { } tokens)
        {
            states.Add(tokens);
        }

        return Refused(states, refused.End, now, refused.RefusalCode, refused.Refusal);
    }

    private static ApiException Refused(IReadOnlyList<LimitState> states, DateTime resetAt, DateTimeOffset now, string code, string message) =>
        new(StatusCodes.Status429TooManyRequests, code, message)
        {
            RetryAfter = TimeSpan.FromSeconds(RateLimitHeaders.Seconds(resetAt - now)),
            Headers = RateLimitHeaders.For(states, now),
        };

    private async Task<List<LimitState>> StatesAsync(IEnumerable<Window> windows, CancellationToken ct)
    {
        var states = new List<LimitState>();
        // The rate-limit headers describe requests and tokens; the fine-tune quota shows in GET /v1/billing.
        foreach (var window in windows.Where(w => w.Limit is not null && w.Name != MonthlyFineTunes))
        {
            states.Add(State(window, await counters.ReadAsync(window.CounterId, ct)));
        }

        return states;
    }

    /// <summary>This minute's settled tokens against the plan's tokens-per-minute limit; null when unlimited.</summary>
    private async Task<LimitState?> TokensAsync(string workspaceId, PlanLimits limits, DateTimeOffset now, CancellationToken ct)
    {
        if (limits.TokensPerMinute is not { } limit)
        {
            return null;
        }

        var used = await counters.ReadAsync(CounterWindows.TokensMinute(workspaceId, now), ct);
        return new LimitState(TokensMinute, LimitUnit.Tokens, limit, Math.Max(0, limit - used), CounterWindows.MinuteEnd(now), TimeSpan.FromMinutes(1));
    }

    private static LimitState State(Window window, long count) =>
        new(window.Name, LimitUnit.Requests, window.Limit!.Value, Math.Max(0, window.Limit.Value - count), window.End, window.End - window.Start);

    private async Task ReleaseAsync(IEnumerable<Window> windows)
    {
        foreach (var window in windows)
        {
            await counters.ReleaseAsync(window.CounterId, CancellationToken.None);
        }
    }
}
