using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Accounts;

/// <summary>A workspace's prepaid balance, in millionths of a dollar so the store can add to it atomically.</summary>
public sealed class Account : IDocument
{
    public const string Collection = "billing_accounts";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public long BalanceMicros { get; set; }

    /// <summary>References of the top-ups already applied: a top-up is applied once per reference.</summary>
    public List<string> AppliedCredits { get; set; } = [];
}

public static class Money
{
    public const decimal MicrosPerUsd = 1_000_000m;

    public static long ToMicros(decimal usd) => (long)decimal.Round(usd * MicrosPerUsd, MidpointRounding.AwayFromZero);

    public static decimal ToUsd(long micros) => micros / MicrosPerUsd;
}

public sealed record CreditResult(long BalanceMicros, bool Applied);

public sealed class Balances(IDocumentStore store, AccountStatusPublisher status)
{
    private readonly IDocumentCollection<Account> accounts = store.Collection<Account>(Account.Collection);

    public async Task<long> BalanceMicrosAsync(string workspaceId, CancellationToken ct) =>
        (await accounts.GetAsync(workspaceId, ct))?.BalanceMicros ?? 0;

    /// <summary>Adds a top-up once per reference (atomic: the reference is recorded in the same write as the amount).</summary>
    public async Task<CreditResult> CreditAsync(string workspaceId, long amountMicros, string reference, CancellationToken ct)
    {
        await EnsureAsync(workspaceId, ct);
        long before = 0;
        var credited = await accounts.FindOneAndUpdateAsync(
            a => a.Id == workspaceId && !a.AppliedCredits.Contains(reference),
            a =>
            {
                before = a.BalanceMicros;
                a.BalanceMicros += amountMicros;
                a.AppliedCredits.Add(reference);
            },
            null, ct);
        if (credited is null)
        {
            return new CreditResult(await BalanceMicrosAsync(workspaceId, ct), Applied: false);
        }

        if (before <= 0 && credited.BalanceMicros > 0)
        {
            await status.PublishAsync(workspaceId, AccountStatus.Active, ct);
        }

        return new CreditResult(credited.BalanceMicros, Applied: true);
    }

    /// <summary>Takes a charge off the balance (it may go below zero: requests already admitted are still paid for).</summary>
    public async Task<long> DebitAsync(string workspaceId, long amountMicros, CancellationToken ct)
    {
        await EnsureAsync(workspaceId, ct);
        var after = await accounts.IncrementAsync(workspaceId, a => a.BalanceMicros, -amountMicros, ct);
        if (after <= 0 && after + amountMicros > 0)
        {
            await status.PublishAsync(workspaceId, AccountStatus.InsufficientCredits, ct);
        }

        return after;
    }

    private async Task EnsureAsync(string workspaceId, CancellationToken ct)
    {
        if (await accounts.GetAsync(workspaceId, ct) is not null)
        {
            return;
        }

        try
        {
            await accounts.InsertAsync(new Account { Id = workspaceId }, ct);
        }
        catch (DuplicateDocumentException)
        {
            // Created concurrently; either copy is the same empty account.
        }
    }
}
