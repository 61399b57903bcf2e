using LLMTune.Billing.Features.Plans;
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
/// The one place <see cref="AccountStatusChanged"/> is published (when a workspace crosses a threshold), so it can move
/// to a transactional outbox in one edit. The state itself is already in the store; the event only announces it.
/// </summary>
public sealed class AccountStatusPublisher(EventOutbox outbox, PlanCatalog plans, TimeProvider time, ILogger<AccountStatusPublisher> logger)
{
    public async Task PublishAsync(string workspaceId, string status, CancellationToken ct)
    {
        var plan = (await plans.ForWorkspaceAsync(workspaceId, ct)).Plan;
        logger.LogInformation("Workspace {WorkspaceId} ({Plan}) is now {AccountStatus}", workspaceId, plan, status);
        await outbox.PublishAsync(new AccountStatusChanged(workspaceId, RequestIdMiddleware.NewId("acct"), time.GetUtcNow(), plan, status), ct);
    }
}
