using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Shared;
using LLMTune.Contracts;
using LLMTune.Platform.Storage;
using MassTransit;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// The gateway's copy of whether a workspace has credits left, fed by billing's <see cref="AccountStatusChanged"/>
/// (billing owns balances; admission never reads them). No document: no credits yet, as a new account starts at zero.
/// </summary>
public sealed class AccountStanding : IDocument
{
    public const string Collection = "admission_accounts";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public bool HasCredits { get; set; }

    /// <summary>The <see cref="AccountStatusChanged.Sequence"/> this copy is at: older statuses are ignored.</summary>
    public long Sequence { get; set; }
}

public sealed class AccountStandings(IDocumentStore store)
{
    private readonly IDocumentCollection<AccountStanding> standings = store.Collection<AccountStanding>(AccountStanding.Collection);

    public async Task<bool> HasCreditsAsync(string workspaceId, CancellationToken ct) =>
        (await standings.GetAsync(workspaceId, ct))?.HasCredits ?? false;

    /// <summary>Applies a credit status if it is newer than the copy's (redeliveries and late arrivals change nothing).</summary>
    public async Task ApplyAsync(AccountStatusChanged changed, CancellationToken ct)
    {
        if (changed.Status is not (AccountStatus.Active or AccountStatus.InsufficientCredits))
        {
            return;
        }

        var hasCredits = changed.Status == AccountStatus.Active;
        await SequencedCopy.KeepNewestAsync(standings, changed.WorkspaceId, s => s.Id == changed.WorkspaceId && s.Sequence < changed.Sequence, s =>
        {
            s.HasCredits = hasCredits;
            s.Sequence = changed.Sequence;
        }, () => new AccountStanding { Id = changed.WorkspaceId, HasCredits = hasCredits, Sequence = changed.Sequence }, ct);
    }
}

/// <summary>Keeps the gateway's copy of credit statuses (one store for every gateway replica, so one consumer suffices).</summary>
public sealed class AccountStandingConsumer(AccountStandings standings) : IConsumer<AccountStatusChanged>
{
    public Task Consume(ConsumeContext<AccountStatusChanged> context) => standings.ApplyAsync(context.Message, context.CancellationToken);
}

/// <summary>Settles the tokens admission reserved for a request to what it used (batch items: adds what they used).</summary>
public sealed class TokenSettlementConsumer(TokenBudget tokens) : IConsumer<InferenceCompleted>
{
    public Task Consume(ConsumeContext<InferenceCompleted> context)
    {
        var done = context.Message;
        return tokens.SettleAsync(done.WorkspaceId, done.KeyId, done.UsageId, Math.Max(0, done.PromptTokens) + Math.Max(0, done.CompletionTokens),
            done.Timestamp, context.CancellationToken);
    }
}
