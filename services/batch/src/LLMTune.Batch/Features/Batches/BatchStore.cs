using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;

namespace LLMTune.Batch.Features.Batches;

/// <summary>
/// Batches and their items in this service's document store: reads, lists, claims and the conditional writes. A write
/// that a message announces commits with it through the outbox (one store write), so state and message never part.
/// </summary>
public sealed class BatchStore(IDocumentStore store, EventOutbox outbox, BatchEvents events, TimeProvider time)
{
    private readonly IDocumentCollection<InferenceBatch> _batches = store.Collection<InferenceBatch>(InferenceBatch.Collection);
    private readonly IDocumentCollection<BatchItem> _items = store.Collection<BatchItem>(BatchItem.Collection);

    public DateTime Now => time.GetUtcNow().UtcDateTime;

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await _batches.EnsureIndexAsync(b => b.WorkspaceId, ct: ct);
        await _batches.EnsureIndexAsync(b => b.CreatedAt, ct: ct);
        await _batches.EnsureIndexAsync(b => b.Status, ct: ct);
        await _items.EnsureIndexAsync(i => i.BatchId, ct: ct);
        await _items.EnsureIndexAsync(i => i.Status, ct: ct);
        await _items.EnsureIndexAsync(i => i.DueAt, ct: ct);
    }

    /// <summary>The batch, its items and its <c>BatchQueued</c>: all of them or none.</summary>
    public Task InsertAsync(InferenceBatch batch, IReadOnlyList<BatchItem> items, CancellationToken ct)
    {
        var write = outbox.Write();
        foreach (var item in items)
        {
            write.Insert(_items, item);
        }

        return write.Insert(_batches, batch).Add(events.Queued(batch)).CommitAsync(ct);
    }

    public Task<InferenceBatch?> GetAsync(string batchId, CancellationToken ct) => _batches.GetAsync(batchId, ct);

    /// <summary>The batch if it belongs to the workspace; another workspace's batch is simply not found.</summary>
    public async Task<InferenceBatch?> GetAsync(string workspaceId, string batchId, CancellationToken ct) =>
        await _batches.GetAsync(batchId, ct) is { } batch && batch.WorkspaceId == workspaceId ? batch : null;

    public Task<Page<InferenceBatch>> ListAsync(string workspaceId, PageRequest page, CancellationToken ct) =>
        _batches.FindPageAsync(page, time, asOf => b => b.WorkspaceId == workspaceId && b.CreatedAt <= asOf, b => b.CreatedAt, b => b.Id, ct);

    /// <summary>
    /// A page of the workspace's OpenAI batches, newest first, after <paramref name="after"/> (OpenAI's cursor: the last
    /// id of the previous page). Batches created in the same instant as it are ordered by id, as the page is.
    /// </summary>
    public async Task<(IReadOnlyList<InferenceBatch> Page, bool HasMore)> ListOpenAiAsync(string workspaceId, InferenceBatch? after, int limit, CancellationToken ct)
    {
        if (after is null)
        {
            var first = await _batches.FindAsync(b => b.WorkspaceId == workspaceId && b.Format == BatchFormat.OpenAi,
                FindOptions<InferenceBatch>.OrderByDescending(b => b.CreatedAt).ThenByDescending(b => b.Id).Take(limit + 1), ct);
            return (first.Take(limit).ToList(), first.Count > limit);
        }

        var createdAt = after.CreatedAt;
        var ties = (int)await _batches.CountAsync(b => b.WorkspaceId == workspaceId && b.Format == BatchFormat.OpenAi && b.CreatedAt == createdAt, ct);
        var found = await _batches.FindAsync(b => b.WorkspaceId == workspaceId && b.Format == BatchFormat.OpenAi && b.CreatedAt <= createdAt,
            FindOptions<InferenceBatch>.OrderByDescending(b => b.CreatedAt).ThenByDescending(b => b.Id).Take(limit + 1 + ties), ct);
        var rest = found.SkipWhile(b => b.Id != after.Id).Skip(1).ToList();
        return (rest.Take(limit).ToList(), rest.Count > limit);
    }

    public Task<IReadOnlyList<BatchItem>> ItemsOfAsync(string batchId, CancellationToken ct) =>
        _items.FindAsync(i => i.BatchId == batchId, FindOptions<BatchItem>.OrderBy(i => i.Index), ct);

    public Task<BatchItem?> GetItemAsync(string itemKey, CancellationToken ct) => _items.GetAsync(itemKey, ct);

    /// <summary>Pending items that are due (new, or requested before without a result), oldest due first.</summary>
    public Task<IReadOnlyList<BatchItem>> DueAsync(int maxAttempts, int limit, CancellationToken ct)
    {
        var now = Now;
        return _items.FindAsync(
            i => i.Status == BatchItemStatus.Pending && i.DueAt <= now && i.Attempts < maxAttempts,
            FindOptions<BatchItem>.OrderBy(i => i.DueAt).ThenBy(i => i.Id).Take(limit),
            ct);
    }

    /// <summary>Items of the batch requested and still waiting for their result.</summary>
    public Task<long> InFlightAsync(string batchId, CancellationToken ct)
    {
        var now = Now;
        return _items.CountAsync(i => i.BatchId == batchId && i.Status == BatchItemStatus.Pending && i.Attempts > 0 && i.DueAt > now, ct);
    }

    /// <summary>
    /// Takes a due item and records its <c>RunBatchItem</c> in the same write (versioned, so one replica gets it); sets
    /// when it is due again. Null when it is not due any more (another replica took it, it finished or was cancelled).
    /// </summary>
    public async Task<BatchItem?> ClaimAsync(string itemKey, TimeSpan resultTimeout, int maxAttempts, CancellationToken ct)
    {
        var now = Now;
        var item = await _items.GetAsync(itemKey, ct);
        if (item is null || item.Status != BatchItemStatus.Pending || item.DueAt > now || item.Attempts >= maxAttempts)
        {
            return null;
        }

        item.Attempts++;
        item.DueAt = now + resultTimeout;
        try
        {
            await outbox.Write().Replace(_items, item).Add(events.Request(item)).CommitAsync(ct);
            return item;
        }
        catch (Exception e) when (e is ConcurrencyConflictException or DocumentNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Pending items requested as often as allowed whose last result timeout has passed.</summary>
    public Task<IReadOnlyList<BatchItem>> ExhaustedAsync(int maxAttempts, CancellationToken ct)
    {
        var now = Now;
        return _items.FindAsync(i => i.Status == BatchItemStatus.Pending && i.DueAt <= now && i.Attempts >= maxAttempts, FindOptions<BatchItem>.First(100), ct);
    }

    public Task<IReadOnlyList<BatchItem>> PendingItemsAsync(string batchId, CancellationToken ct) =>
        _items.FindAsync(i => i.BatchId == batchId && i.Status == BatchItemStatus.Pending, null, ct);

    /// <summary>Finishes a pending item; null when it already finished (a repeated result) or is unknown.</summary>
    public Task<BatchItem?> FinishItemAsync(string itemKey, Action<BatchItem> finish, CancellationToken ct)
    {
        var now = Now;
        return _items.FindOneAndUpdateAsync(
            i => i.Id == itemKey && i.Status == BatchItemStatus.Pending,
            i =>
            {
                finish(i);
                i.CompletedAt = now;
            },
            null, ct);
    }

    public async Task<(int Succeeded, int Failed, int Cancelled)> CountAsync(string batchId, CancellationToken ct) => (
        (int)await _items.CountAsync(i => i.BatchId == batchId && i.Status == BatchItemStatus.Succeeded, ct),
        (int)await _items.CountAsync(i => i.BatchId == batchId && i.Status == BatchItemStatus.Failed, ct),
        (int)await _items.CountAsync(i => i.BatchId == batchId && i.Status == BatchItemStatus.Cancelled, ct));

    /// <summary>
    /// Applies <paramref name="update"/> to the latest copy (again on a concurrent change) and writes it; when the batch
    /// has just finished (final status, not cancelled, not yet announced), its <c>BatchCompleted</c> goes in the same
    /// write. Returns the written batch and whether this write announced it; null when the batch is unknown.
    /// </summary>
    public async Task<(InferenceBatch Batch, bool Announced)?> UpdateAsync(string batchId, Action<InferenceBatch> update, CancellationToken ct)
    {
        while (true)
        {
            if (await _batches.GetAsync(batchId, ct) is not { } batch)
            {
                return null;
            }

            update(batch);
            var write = outbox.Write().Replace(_batches, batch);
            var announce = !batch.CompletionAnnounced && IsAnnounced(batch.Status);
            if (announce)
            {
                batch.CompletionAnnounced = true;
                write.Add(events.Completed(batch));
            }

            try
            {
                await write.CommitAsync(ct);
                return (batch, announce);
            }
            catch (ConcurrencyConflictException)
            {
                // changed meanwhile (a concurrent result): apply the update to the newer copy
            }
            catch (DocumentNotFoundException)
            {
                return null;
            }
        }
    }

    /// <summary>Final statuses that are announced with <c>BatchCompleted</c> (a cancelled batch is not).</summary>
    private static bool IsAnnounced(BatchStatus status) =>
        status is BatchStatus.Completed or BatchStatus.CompletedWithErrors or BatchStatus.Failed;

    /// <summary>Queued → processing when its first item is requested.</summary>
    public Task<InferenceBatch?> MarkProcessingAsync(string batchId, CancellationToken ct)
    {
        var now = Now;
        return _batches.FindOneAndUpdateAsync(b => b.Id == batchId && b.Status == BatchStatus.Queued, b =>
        {
            b.Status = BatchStatus.Processing;
            b.StartedAt ??= now;
        }, null, ct);
    }

    /// <summary>
    /// Cancels a batch that has not finished, with its <c>BatchCancelled</c> (which stops the items being generated) in
    /// the same write; null when it has finished (or is unknown).
    /// </summary>
    public async Task<InferenceBatch?> CancelAsync(string batchId, CancellationToken ct)
    {
        while (true)
        {
            if (await _batches.GetAsync(batchId, ct) is not { Status: BatchStatus.Queued or BatchStatus.Processing } batch)
            {
                return null;
            }

            var now = Now;
            batch.Status = BatchStatus.Cancelled;
            batch.CancelledAt = now;
            batch.CompletedAt = now;
            try
            {
                await outbox.Write().Replace(_batches, batch).Add(events.Cancelled(batch)).CommitAsync(ct);
                return batch;
            }
            catch (ConcurrencyConflictException)
            {
                // changed meanwhile (a result came in): look again
            }
            catch (DocumentNotFoundException)
            {
                return null;
            }
        }
    }

    public Task<IReadOnlyList<InferenceBatch>> UnfinishedAsync(CancellationToken ct) =>
        _batches.FindAsync(b => b.Status == BatchStatus.Queued || b.Status == BatchStatus.Processing, FindOptions<InferenceBatch>.OrderBy(b => b.CreatedAt).Take(200), ct);

    /// <summary>
    /// Finished (not cancelled) batches whose BatchCompleted was never recorded: only batches finished by a version
    /// that published after the write, before the outbox (now the final status and the event are one write).
    /// </summary>
    public Task<IReadOnlyList<InferenceBatch>> UnannouncedAsync(CancellationToken ct) =>
        _batches.FindAsync(
            b => !b.CompletionAnnounced && (b.Status == BatchStatus.Completed || b.Status == BatchStatus.CompletedWithErrors || b.Status == BatchStatus.Failed),
            FindOptions<InferenceBatch>.First(100), ct);
}
