using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Plans;
using LLMTune.Contracts;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Charging;

public static class UsageKind
{
    public const string Inference = "inference";
    public const string FineTune = "fine-tune";
}

/// <summary>
/// One charge: an inference request, keyed by its usage id (the server's id of the request, unique; never the client's
/// <c>x-request-id</c>, which a client could reuse to be charged once for many requests): inserted once, so a
/// redelivered event charges nothing; or a completed fine-tune's trained tokens, keyed <c>fine-tune:{jobId}</c>.
/// </summary>
public sealed class UsageRecord : IDocument
{
    public const string Collection = "billing_usage";

    public string Id { get; set; } = "";
    public long Version { get; set; }

    public string Kind { get; set; } = UsageKind.Inference;

    /// <summary>The request id the client saw (<c>x-request-id</c>), to find a charge by what the client quotes.</summary>
    public string RequestId { get; set; } = "";
    public string WorkspaceId { get; set; } = "";
    public string KeyId { get; set; } = "";
    public string Model { get; set; } = "";
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public long TrainedTokens { get; set; }
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

    /// <summary>Tokens fine-tunes trained on (charged when they completed this day; their rows have no key).</summary>
    public long TrainedTokens { get; set; }
    public long CostMicros { get; set; }
}

/// <summary>
/// Turns finished inference and completed fine-tunes into charges and usage roll-ups, priced by the plan billing's copy
/// says (<see cref="PlanView"/>). The gateway's admission settles its token reservations from the same events.
/// </summary>
/// <remarks>
/// Inference charges that arrive while one is being written are written together in the next write (one transaction
/// for many requests: their records, each workspace's debit once, each day's totals once). When a group is refused
/// (a redelivered charge, or a concurrent change of an account or a day) its charges are written one by one, each
/// with its own answer, as before.
/// </remarks>
public sealed class Meter(IDocumentStore store, EventOutbox outbox, Balances accounts, PlanView plans)
{
    /// <summary>Charges per write at most: big enough to amortise the commit, small enough to keep latency low.</summary>
    public const int MaxGroup = 256;

    private readonly IDocumentCollection<UsageRecord> records = store.Collection<UsageRecord>(UsageRecord.Collection);
    private readonly IDocumentCollection<DailyUsage> daily = store.Collection<DailyUsage>(DailyUsage.Collection);
    private WriteGroups<PendingCharge>? charges;

    private WriteGroups<PendingCharge> Charges => LazyInitializer.EnsureInitialized(ref charges, () => new WriteGroups<PendingCharge>(WriteGroupAsync, MaxGroup));

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await records.EnsureIndexAsync(r => r.WorkspaceId, ct: ct);
        await daily.EnsureIndexAsync(d => d.WorkspaceId, ct: ct);
        await daily.EnsureIndexAsync(d => d.Day, ct: ct);
    }

    /// <summary>Charges a finished request once; false when it was charged already (a redelivery).</summary>
    /// <remarks>The record, the debit and the account status it crosses into are one write: charged once or not at all.</remarks>
    public async Task<bool> ChargeAsync(InferenceCompleted done, CancellationToken ct)
    {
        var (_, limits) = await plans.ForWorkspaceAsync(done.WorkspaceId, ct);
        var at = done.Timestamp.UtcDateTime;
        var record = new UsageRecord
        {
            Id = done.UsageId,
            RequestId = done.CorrelationId,
            WorkspaceId = done.WorkspaceId,
            KeyId = done.KeyId,
            Model = done.Model,
            PromptTokens = Math.Max(0, done.PromptTokens),
            CompletionTokens = Math.Max(0, done.CompletionTokens),
            CostMicros = Money.ToMicros(limits.PricePerRequestUsd),
            FinishReason = done.FinishReason,
            At = at,
        };
        var charge = new PendingCharge(record);
        Charges.Add(charge);
        return await charge.Done.Task.WaitAsync(ct);
    }

    /// <summary>Charges a completed fine-tune's trained tokens once per job; false when it was charged already.</summary>
    public async Task<bool> ChargeAsync(TrainingCompleted done, CancellationToken ct)
    {
        var (_, limits) = await plans.ForWorkspaceAsync(done.WorkspaceId, ct);
        var trained = Math.Max(0, done.TrainedTokens);
        return await RecordOnceAsync(new UsageRecord
        {
            Id = $"{UsageKind.FineTune}:{done.JobId}",
            Kind = UsageKind.FineTune,
            RequestId = done.JobId,
            WorkspaceId = done.WorkspaceId,
            Model = done.BaseModel,
            TrainedTokens = trained,
            // Micros per token = USD per million tokens.
            CostMicros = (long)decimal.Round(trained * limits.PricePerMillionTrainedTokensUsd, MidpointRounding.AwayFromZero),
            FinishReason = "completed",
            At = done.Timestamp.UtcDateTime,
        }, ct);
    }

    /// <summary>
    /// Inserts the record (the idempotency check) with its debit and its day's totals in one write; false when it
    /// existed. A concurrent change of the balance or the day makes the write retry from fresh reads.
    /// </summary>
    private async Task<bool> RecordOnceAsync(UsageRecord record, CancellationToken ct)
    {
        while (true)
        {
            var write = outbox.Write().Insert(records, record);
            if (record.CostMicros > 0)
            {
                await accounts.ChangeAsync(write, record.WorkspaceId, await accounts.GetAsync(record.WorkspaceId, ct), -record.CostMicros, ct);
            }

            await AddToDayAsync(write, record, ct);
            try
            {
                if (await Balances.TryCommitAsync(write, ct))
                {
                    return true;
                }
            }
            catch (DuplicateDocumentException e) when (e.Collection == UsageRecord.Collection)
            {
                return false;
            }
            catch (DuplicateDocumentException e) when (e.Collection == DailyUsage.Collection)
            {
                // Another event opened the day first: add to it on the next pass.
            }
        }
    }

    private Task AddToDayAsync(OutboxWrite write, UsageRecord record, CancellationToken ct) => AddToDaysAsync(write, [record], ct);

    /// <summary>Adds the records to their days' totals in <paramref name="write"/>: each day read and written once.</summary>
    private async Task AddToDaysAsync(OutboxWrite write, IReadOnlyList<UsageRecord> group, CancellationToken ct)
    {
        foreach (var day in group.GroupBy(DayId))
        {
            var first = day.First();
            var totals = await daily.GetAsync(day.Key, ct);
            var opened = totals is null;
            totals ??= new DailyUsage
            {
                Id = day.Key,
                WorkspaceId = first.WorkspaceId,
                Day = DateTime.SpecifyKind(first.At.Date, DateTimeKind.Utc),
                Model = first.Model,
                KeyId = first.KeyId,
            };
            foreach (var record in day)
            {
                totals.Requests += record.Kind == UsageKind.Inference ? 1 : 0;
                totals.PromptTokens += record.PromptTokens;
                totals.CompletionTokens += record.CompletionTokens;
                totals.TrainedTokens += record.TrainedTokens;
                totals.CostMicros += record.CostMicros;
            }

            _ = opened ? write.Insert(daily, totals) : write.Replace(daily, totals);
        }
    }

    private static string DayId(UsageRecord record) =>
        FormattableString.Invariant($"{record.WorkspaceId}:{record.At.Date:yyyy-MM-dd}:{record.Model}:{record.KeyId}");

    private async Task WriteGroupAsync(List<PendingCharge> group)
    {
        // A redelivery can put one request's charge twice in a group: the first is the one written.
        var distinct = group.DistinctBy(c => c.Record.Id).ToList();
        if (distinct.Count > 1)
        {
            try
            {
                var write = outbox.Write();
                foreach (var charge in distinct)
                {
                    write.Insert(records, charge.Record);
                }

                foreach (var workspace in distinct.Select(c => c.Record).Where(r => r.CostMicros > 0).GroupBy(r => r.WorkspaceId))
                {
                    await accounts.ChangeAsync(write, workspace.Key, await accounts.GetAsync(workspace.Key, CancellationToken.None),
                        -workspace.Sum(r => r.CostMicros), CancellationToken.None);
                }

                await AddToDaysAsync(write, [.. distinct.Select(c => c.Record)], CancellationToken.None);
                await write.CommitAsync(CancellationToken.None);
                foreach (var charge in group)
                {
                    charge.Done.TrySetResult(distinct.Contains(charge));
                }

                return;
            }
            catch (Exception e) when (e is DuplicateDocumentException or ConcurrencyConflictException)
            {
                // A charge of the group was written before, or an account or a day changed: each on its own below.
            }
            catch (Exception e)
            {
                group.ForEach(c => c.Done.TrySetException(e));
                return;
            }
        }

        foreach (var charge in group)
        {
            try
            {
                charge.Done.TrySetResult(await RecordOnceAsync(charge.Record, CancellationToken.None));
            }
            catch (Exception e)
            {
                charge.Done.TrySetException(e);
            }
        }
    }

    private sealed record PendingCharge(UsageRecord Record)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public Task<IReadOnlyList<DailyUsage>> DaysAsync(string workspaceId, DateTime from, DateTime toExclusive, CancellationToken ct) =>
        daily.FindAsync(d => d.WorkspaceId == workspaceId && d.Day >= from && d.Day < toExclusive, FindOptions<DailyUsage>.OrderBy(d => d.Day), ct);
}
