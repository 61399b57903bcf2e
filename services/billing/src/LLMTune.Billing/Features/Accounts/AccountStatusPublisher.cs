using LLMTune.Billing.Features.Admission;
using LLMTune.Contracts;
using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using Microsoft.Extensions.Logging;

namespace LLMTune.Billing.Features.Accounts;

public static class AccountStatus
{
    public const string Active = "active";
    public const string QuotaExhausted = "quota_exhausted";
    public const string InsufficientCredits = "insufficient_credits";
}

/// <summary>
/// Admission's announcement that a workspace took the month's last request (its own state is the counter). Credit
/// statuses are billing's, recorded with the balance change (<see cref="Balances"/>).
/// </summary>
public sealed class AccountStatusPublisher(EventOutbox outbox, WorkspacePlans plans, TimeProvider time, ILogger<AccountStatusPublisher> logger)
{
    public async Task QuotaExhaustedAsync(string workspaceId, CancellationToken ct)
    {
        var plan = (await plans.ForWorkspaceAsync(workspaceId, ct)).Plan;
        logger.LogInformation("Workspace {WorkspaceId} ({Plan}) is now {AccountStatus}", workspaceId, plan, AccountStatus.QuotaExhausted);
        await outbox.PublishAsync(new AccountStatusChanged(workspaceId, RequestIdMiddleware.NewId("acct"), time.GetUtcNow(), plan, AccountStatus.QuotaExhausted), ct);
    }
}
