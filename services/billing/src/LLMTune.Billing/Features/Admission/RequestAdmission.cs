using LLMTune.Billing.Features.Accounts;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// One request as admission sees it: <paramref name="UsageId"/> is the server's id of the request (never the client's
/// <c>x-request-id</c>), which its token reservation is kept under; <paramref name="WorstCaseTokens"/> is null for
/// requests that run no inference.
/// </summary>
public sealed record AdmissionRequest(string WorkspaceId, string KeyId, string UsageId, bool CreatesFineTune, long? WorstCaseTokens);

/// <summary>
/// What an admitted request holds: the limits to report, the in-flight units to give back when the response ends,
/// the fine-tune reservation to give back if no job is created, and whether it reserved tokens.
/// </summary>
public sealed record Admitted(
    IReadOnlyList<LimitState> Limits, DateTimeOffset At, string Plan, bool PriorityFineTunes,
    IReadOnlyList<string> InFlight, string? FineTuneReservation, bool ReservedTokens);

/// <summary>
/// Decides, before a request runs, whether its workspace and key may make it, in separate steps that each reserve in
/// the store: credits left on prepaid plans (the gateway's copy of billing's account status, <see cref="AccountStandings"/>), requests in flight (<see cref="ConcurrencyGate"/>),
/// counted requests per minute, month and fine-tunes (<see cref="RequestWindows"/>), then tokens per minute
/// (<see cref="TokenBudget"/>). A step that refuses gives back what the earlier steps took.
/// </summary>
public sealed class RequestAdmission(
    ConcurrencyGate concurrency, RequestWindows requests, TokenBudget tokens, AccountStandings standings, WorkspacePlans plans,
    AccountStatusPublisher status, TimeProvider time)
{
    public async Task<Admitted> AdmitAsync(AdmissionRequest request, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var (plan, limits) = await plans.ForWorkspaceAsync(request.WorkspaceId, ct);
        if (limits.Prepaid && !await standings.HasCreditsAsync(request.WorkspaceId, ct))
        {
            throw new ApiException(StatusCodes.Status402PaymentRequired, "insufficient_credits",
                $"The workspace's balance is used up ({plan} plan). Top up your balance to continue.");
        }

        var (inFlight, busy) = await concurrency.TryEnterAsync(request.WorkspaceId, request.KeyId, limits, ct);
        if (busy is not null)
        {
            // A slot frees as soon as one of the running requests ends.
            throw Refused(busy.States, now.UtcDateTime.AddSeconds(1), now, "rate_limited", busy.Message);
        }

        var held = inFlight?.CounterIds ?? [];
        var released = inFlight?.AfterRelease() ?? [];
        try
        {
            var (counted, refusedWindow) = await requests.TryTakeAsync(request.WorkspaceId, request.KeyId, plan, limits, request.CreatesFineTune, ct);
            if (refusedWindow is not null)
            {
                var (tokenStates, _) = await tokens.TryReserveAsync(request.WorkspaceId, request.KeyId, request.UsageId, null, limits, ct);
                throw Refused([.. refusedWindow.States, .. tokenStates, .. released], refusedWindow.Window.End, now,
                    refusedWindow.Window.RefusalCode, refusedWindow.Window.Refusal);
            }

            var (reserved, tooMany) = await tokens.TryReserveAsync(
                request.WorkspaceId, request.KeyId, request.UsageId, request.WorstCaseTokens, limits, ct);
            if (tooMany is not null)
            {
                await requests.ReleaseAsync(counted!.CounterIds);
                throw Refused([.. counted.States, .. tooMany.States, .. released], tooMany.ResetAt, now, "rate_limited", tooMany.Message);
            }

            if (counted!.TookLastOfMonth)
            {
                await status.QuotaExhaustedAsync(request.WorkspaceId, ct);
            }

            return new Admitted([.. counted.States, .. reserved, .. inFlight?.States ?? []], now, plan, limits.PriorityFineTunes,
                held, counted.FineTuneCounterId, request.WorstCaseTokens is not null);
        }
        catch
        {
            await concurrency.ReleaseAsync(held);
            throw;
        }
    }

    /// <summary>
    /// The end of an admitted request (after its response, also when it failed or was cut short): gives back its
    /// in-flight units, its fine-tune reservation if no job was created and its tokens if no inference ran.
    /// </summary>
    public async Task CompleteAsync(Admitted admitted, string usageId, bool succeeded)
    {
        await concurrency.ReleaseAsync(admitted.InFlight);
        if (succeeded)
        {
            return;
        }

        if (admitted.FineTuneReservation is { } fineTune)
        {
            await requests.ReleaseAsync([fineTune]);
        }

        if (admitted.ReservedTokens)
        {
            // InferenceCompleted may still come (e.g. a failure after generation started); it then counts what it used.
            await tokens.CancelAsync(usageId);
        }
    }

    private static ApiException Refused(IReadOnlyList<LimitState> states, DateTime resetAt, DateTimeOffset now, string code, string message) =>
        new(StatusCodes.Status429TooManyRequests, code, message)
        {
            RetryAfter = TimeSpan.FromSeconds(RateLimitHeaders.Seconds(resetAt - now)),
            Headers = RateLimitHeaders.For(states, now),
        };
}
