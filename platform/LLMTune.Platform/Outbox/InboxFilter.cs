using LLMTune.Platform.Storage;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Outbox;

/// <summary>A consumer's memory of one message id: being handled (with a lease) or handled.</summary>
public sealed class InboxRecord : IDocument
{
    public const string Collection = "inbox";

    /// <summary>"{queue}/{messageId}": each consumer (queue) handles each message once.</summary>
    public string Id { get; set; } = "";

    public long Version { get; set; }

    public bool Done { get; set; }

    /// <summary>Until when the consumer that claimed it is presumed alive; a later copy may take over afterwards.</summary>
    public DateTime LockedUntil { get; set; }

    /// <summary>The record is deleted <c>Outbox:InboxRetention</c> after this.</summary>
    public DateTime ReceivedAt { get; set; }
}

/// <summary>
/// Runs every consumer at most once per message id (the outbox gives each event one id for all its deliveries), so
/// at-least-once delivery has exactly-once effects. A copy that arrives while the first is still being handled waits
/// for it; a failed attempt forgets the id, so a retry or redelivery runs the consumer again. A consumer that is
/// <see cref="INaturallyIdempotentConsumer"/> is let through (<see cref="InboxExemptions"/>).
/// </summary>
/// <remarks>
/// On a store that is the only writer of its data (<see cref="IDocumentStore.IsExclusive"/>) the claim is held in
/// memory (no other process can take the message) and only the handled record is written: one write per message
/// instead of two, shared with other messages' by the group commit.
/// </remarks>
public sealed class InboxFilter<T>(
    IDocumentStore store, IOptions<OutboxOptions> options, TimeProvider time, InboxExemptions exemptions, ILogger<InboxFilter<T>> logger)
    : IFilter<ConsumeContext<T>> where T : class
{
    /// <summary>How long a consumer may work on a message before a second copy assumes it died.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan WaitStep = TimeSpan.FromMilliseconds(100);

    private readonly IDocumentCollection<InboxRecord> _inbox = store.Collection<InboxRecord>(InboxRecord.Collection);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IDocumentStore, object> Indexed = [];

    /// <summary>One group commit per store for every consumer's records: under load many share a transaction.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IDocumentStore, GroupCommit<InboxRecord>> Writes = [];

    private GroupCommit<InboxRecord> GroupWrites => Writes.GetValue(store, s => new GroupCommit<InboxRecord>(s, _inbox));

    public async Task Send(ConsumeContext<T> context, IPipe<ConsumeContext<T>> next)
    {
        if (context.MessageId is not { } messageId || exemptions.Contains(QueueOf(context)))
        {
            await next.Send(context).ConfigureAwait(false);
            return;
        }

        var id = $"{QueueOf(context)}/{messageId:N}";
        if (store.IsExclusive)
        {
            await SendOnExclusiveStoreAsync(id, context, next).ConfigureAwait(false);
            return;
        }

        var record = await ClaimAsync(id, context.CancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            logger.LogInformation("Skipped {MessageType} {MessageId} on {Queue}: already handled", typeof(T).Name, messageId, QueueOf(context));
            return;
        }

        try
        {
            await next.Send(context).ConfigureAwait(false);
        }
        catch
        {
            await _inbox.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        record.Done = true;
        // False: our lease ran out and another copy took over; it records the outcome.
        _ = await GroupWrites.ReplaceAsync(record).ConfigureAwait(false);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("inbox");

    private async Task SendOnExclusiveStoreAsync(string id, ConsumeContext<T> context, IPipe<ConsumeContext<T>> next)
    {
        var handling = ExclusiveClaims.For(store, InboxRecord.Collection);
        await EnsureIndexedAsync(context.CancellationToken).ConfigureAwait(false);
        while (!handling.TryTake(id))
        {
            await Task.Delay(WaitStep, context.CancellationToken).ConfigureAwait(false); // another copy is being handled right now
        }

        try
        {
            if (await _inbox.GetAsync(id, context.CancellationToken).ConfigureAwait(false) is { Done: true })
            {
                logger.LogInformation("Skipped {MessageType} {MessageId} on {Queue}: already handled", typeof(T).Name, context.MessageId, QueueOf(context));
                return;
            }

            await next.Send(context).ConfigureAwait(false);
            var now = time.GetUtcNow().UtcDateTime;
            if (!await GroupWrites.InsertAsync(new InboxRecord { Id = id, Done = true, LockedUntil = now, ReceivedAt = now }).ConfigureAwait(false)
                && await _inbox.GetAsync(id, CancellationToken.None).ConfigureAwait(false) is { } claimed)
            {
                // A claim left by a process that died while the store was shared (or before an upgrade): handled now.
                claimed.Done = true;
                _ = await GroupWrites.ReplaceAsync(claimed).ConfigureAwait(false);
            }
        }
        finally
        {
            handling.Release(id);
        }
    }

    /// <summary>The claimed record, or null when the message was handled already.</summary>
    private async Task<InboxRecord?> ClaimAsync(string id, CancellationToken ct)
    {
        await EnsureIndexedAsync(ct).ConfigureAwait(false);
        while (true)
        {
            var now = time.GetUtcNow().UtcDateTime;
            var record = new InboxRecord { Id = id, LockedUntil = now + Lease, ReceivedAt = now };
            if (await GroupWrites.InsertAsync(record).WaitAsync(ct).ConfigureAwait(false))
            {
                return record;
            }

            var existing = await _inbox.GetAsync(id, ct).ConfigureAwait(false);
            if (existing is null)
            {
                continue; // the other attempt failed and forgot it, or it expired
            }

            if (existing.Done)
            {
                return null;
            }

            if (existing.LockedUntil <= now)
            {
                existing.LockedUntil = now + Lease;
                try
                {
                    await _inbox.ReplaceAsync(existing, ct).ConfigureAwait(false);
                    return existing;
                }
                catch (Exception e) when (e is ConcurrencyConflictException or DocumentNotFoundException)
                {
                    continue;
                }
            }

            await Task.Delay(WaitStep, ct).ConfigureAwait(false); // another copy is being handled right now
        }
    }

    private async Task EnsureIndexedAsync(CancellationToken ct)
    {
        if (!Indexed.TryGetValue(store, out _))
        {
            await _inbox.EnsureIndexAsync(r => r.ReceivedAt, expireAfter: options.Value.InboxRetention, ct: ct).ConfigureAwait(false);
            Indexed.TryAdd(store, true);
        }
    }

    private static string QueueOf(ConsumeContext context) => InboxExemptions.QueueName(context.ReceiveContext.InputAddress);
}
