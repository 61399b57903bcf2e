using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Admission;
using LLMTune.Billing.Features.Plans;
using LLMTune.Contracts;
using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Charging;

/// <summary>One charged inference request, keyed by its request id: inserted once, so a redelivered event charges nothing.</summary>
public sealed class UsageRecord : IDocument
{
    public const string Collection = "billing_usage";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string KeyId { get; set; } = "";
    public string Model { get; set; } = "";
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public long CostMicros { get; set; }
    public string FinishReason { get; set; } = "";
    public DateTime At { get; set; }
}

/// <summary>A day's totals for one workspace, model and key: usage queries read these, never the individual records.</summary>
public sealed class DailyUsage : IDocument
{
    public const string Collection = "billing_daily";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public DateTime Day { get; set; }
    public string Model { get; set; } = "";
    public string KeyId { get; set; } = "";
    public long Requests { get; set; }
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }
    public long CostMicros { get; set; }
}

/// <summary>Turns finished inference into charges, usage roll-ups and the settled token count of the minute.</summary>
public sealed class Meter(IDocumentStore store, Balances accounts, PlanCatalog plans, TokenBudget tokens)
{
    private readonly IDocumentCollection<UsageRecord> records = store.Collection<UsageRecord>(UsageRecord.Collection);
    private readonly IDocumentCollection<DailyUsage> daily = store.Collection<DailyUsage>(DailyUsage.Collection);

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await records.EnsureIndexAsync(r => r.WorkspaceId, ct: ct);
        await daily.EnsureIndexAsync(d => d.WorkspaceId, ct: ct);
        await daily.EnsureIndexAsync(d => d.Day, ct: ct);
    }

    /// <summary>Charges a finished request once; false when it was charged already (a redelivery).</summary>
    /// <remarks>
    /// The record is written first and the debit after, so a crash in between under-charges one request rather than
    /// ever charging twice.
    /// </remarks>
    public async Task<bool> ChargeAsync(InferenceCompleted done, CancellationToken ct)
    {
        var (_, limits) = await plans.ForWorkspaceAsync(done.WorkspaceId, ct);
        var at = done.Timestamp.UtcDateTime;
        var record = new UsageRecord
        {
            Id = done.CorrelationId,
            WorkspaceId = done.WorkspaceId,
            KeyId = done.KeyId,
            Model = done.Model,
            PromptTokens = Math.Max(0, done.PromptTokens),
            CompletionTokens = Math.Max(0, done.CompletionTokens),
            CostMicros = Money.ToMicros(limits.PricePerRequestUsd),
            FinishReason = done.FinishReason,
            At = at,
        };
        try
        {
            await records.InsertAsync(record, ct);
        }
        catch (DuplicateDocumentException)
        {
            return false;
        }

        if (record.CostMicros > 0)
        {
            await accounts.DebitAsync(done.WorkspaceId, record.CostMicros, ct);
        }

        await AddToDayAsync(record, ct);
        // Settles what admission reserved for this request to what it used (batch items: adds what they used).
        await tokens.SettleAsync(done.WorkspaceId, done.KeyId, done.CorrelationId, record.PromptTokens + record.CompletionTokens, done.Timestamp, ct);

        return true;
    }

    private async Task AddToDayAsync(UsageRecord record, CancellationToken ct)
    {
        var day = record.At.Date;
        var id = FormattableString.Invariant($"{record.WorkspaceId}:{day:yyyy-MM-dd}:{record.Model}:{record.KeyId}");
        while (true)
        {
            var added = await daily.FindOneAndUpdateAsync(d => d.Id == id, d =>
            {
                d.Requests++;
                d.PromptTokens += record.PromptTokens;
                d.CompletionTokens += record.CompletionTokens;
                d.CostMicros += record.CostMicros;
            }, null, ct);
            if (added is not null)
            {
                return;
            }

            try
            {
                await daily.InsertAsync(new DailyUsage
                {
                    Id = id,
                    WorkspaceId = record.WorkspaceId,
                    Day = DateTime.SpecifyKind(day, DateTimeKind.Utc),
                    Model = record.Model,
                    KeyId = record.KeyId,
                    Requests = 1,
                    PromptTokens = record.PromptTokens,
                    CompletionTokens = record.CompletionTokens,
                    CostMicros = record.CostMicros,
                }, ct);
                return;
            }
            catch (DuplicateDocumentException)
            {
                // Another event opened the day first: add to it on the next pass.
            }
        }
    }

    public Task<IReadOnlyList<DailyUsage>> DaysAsync(string workspaceId, DateTime from, DateTime toExclusive, CancellationToken ct) =>
        daily.FindAsync(d => d.WorkspaceId == workspaceId && d.Day >= from && d.Day < toExclusive, FindOptions<DailyUsage>.OrderBy(d => d.Day), ct);
}
