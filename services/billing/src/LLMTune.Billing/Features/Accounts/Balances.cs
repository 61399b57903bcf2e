using LLMTune.Billing.Features.Plans;
using LLMTune.Contracts;
using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Logging;

namespace LLMTune.Billing.Features.Accounts;

/// <summary>A workspace's prepaid balance, in millionths of a dollar.</summary>
public sealed class Account : IDocument
{
    public const string Collection = "billing_accounts";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public long BalanceMicros { get; set; }

    /// <summary>References of the top-ups already applied: a top-up is applied once per reference.</summary>
    public List<string> AppliedCredits { get; set; } = [];

    /// <summary>Grows with every balance change: the order of the statuses announced (<see cref="AccountStatusChanged.Sequence"/>).</summary>
    public long Sequence { get; set; }
}

public static class Money
{
    public const decimal MicrosPerUsd = 1_000_000m;

    public static long ToMicros(decimal usd) => (long)decimal.Round(usd * MicrosPerUsd, MidpointRounding.AwayFromZero);

    public static decimal ToUsd(long micros) => micros / MicrosPerUsd;
}

public sealed record CreditResult(long BalanceMicros, bool Applied);

/// <summary>
/// Balances, owned by billing. Every change is one outbox write: the account (version-checked, retried when a
/// concurrent change got there first) and, when the balance crosses zero, the <see cref="AccountStatusChanged"/> the
/// gateway's admission keeps its copy from, so the status announced is always the one recorded.
/// </summary>
public sealed class Balances(IDocumentStore store, EventOutbox outbox, PlanView plans, TimeProvider time, ILogger<Balances> logger)
{
    private readonly IDocumentCollection<Account> accounts = store.Collection<Account>(Account.Collection);

    public async Task<long> BalanceMicrosAsync(string workspaceId, CancellationToken ct) =>
        (await accounts.GetAsync(workspaceId, ct))?.BalanceMicros ?? 0;

    /// <summary>Adds a top-up once per reference (the reference is recorded in the same write as the amount).</summary>
    public async Task<CreditResult> CreditAsync(string workspaceId, long amountMicros, string reference, CancellationToken ct)
    {
        while (true)
        {
            var account = await accounts.GetAsync(workspaceId, ct);
            if (account?.AppliedCredits.Contains(reference) == true)
            {
                return new CreditResult(account.BalanceMicros, Applied: false);
            }

            var write = outbox.Write();
            account = await ChangeAsync(write, workspaceId, account, amountMicros, ct);
            account.AppliedCredits.Add(reference);
            if (await TryCommitAsync(write, ct))
            {
                return new CreditResult(account.BalanceMicros, Applied: true);
            }
        }
    }

    /// <summary>
    /// Adds a change of the balance by <paramref name="deltaMicros"/> to <paramref name="write"/> (a charge may take it
    /// below zero: requests already admitted are still paid for), with the status it crosses into; returns the account
    /// as it will be stored. <paramref name="current"/> is the account as read (null: none yet).
    /// </summary>
    public async Task<Account> ChangeAsync(OutboxWrite write, string workspaceId, Account? current, long deltaMicros, CancellationToken ct)
    {
        var account = current ?? new Account { Id = workspaceId };
        var before = account.BalanceMicros;
        account.BalanceMicros += deltaMicros;
        account.Sequence++;
        _ = current is null ? write.Insert(accounts, account) : write.Replace(accounts, account);
        var status = before <= 0 && account.BalanceMicros > 0 ? AccountStatus.Active
            : before > 0 && account.BalanceMicros <= 0 ? AccountStatus.InsufficientCredits
            : null;
        if (status is not null)
        {
            var plan = (await plans.ForWorkspaceAsync(workspaceId, ct)).Plan;
            logger.LogInformation("Workspace {WorkspaceId} ({Plan}) is now {AccountStatus}", workspaceId, plan, status);
            write.Add(new AccountStatusChanged(workspaceId, RequestIdMiddleware.NewId("acct"), time.GetUtcNow(), plan, status, account.Sequence));
        }

        return account;
    }

    public Task<Account?> GetAsync(string workspaceId, CancellationToken ct) => accounts.GetAsync(workspaceId, ct);

    /// <summary>Commits a balance change; false when another change of the account got there first (read it again).</summary>
    public static async Task<bool> TryCommitAsync(OutboxWrite write, CancellationToken ct)
    {
        try
        {
            await write.CommitAsync(ct);
            return true;
        }
        catch (ConcurrencyConflictException)
        {
            return false;
        }
        catch (DuplicateDocumentException e) when (e.Collection == Account.Collection)
        {
            return false; // the account was opened concurrently
        }
    }
}
