namespace LLMTune.Platform.Storage;

/// <summary>
/// Group commit for one collection: inserts and version-checked replaces queued while a commit runs are written
/// together in the next one (one store transaction instead of one per delivery). Each caller still gets its own
/// answer: when a group fails on a duplicate id or a version conflict, its writes are retried one by one.
/// For hot paths with many small independent writes (the inbox, webhook deliveries); a write is as durable as before,
/// it only waits for the commit it shares (and the <paramref name="window"/>, see <see cref="WriteGroups{T}"/>).
/// </summary>
public sealed class GroupCommit<T>(IDocumentStore store, IDocumentCollection<T> collection, TimeSpan window = default) where T : class, IDocument
{
    /// <summary>Writes per transaction at most: big enough to amortise the commit, small enough to keep latency low.</summary>
    public const int MaxGroup = 256;

    private readonly WriteGroups<PendingWrite> _groups = new(group => CommitAsync(store, collection, group), MaxGroup, window);

    /// <summary>False when the id is taken.</summary>
    public Task<bool> InsertAsync(T doc) => Enqueue(new PendingWrite(true, doc));

    /// <summary>False when the stored version changed since <paramref name="doc"/> was read.</summary>
    public Task<bool> ReplaceAsync(T doc) => Enqueue(new PendingWrite(false, doc));

    private Task<bool> Enqueue(PendingWrite write)
    {
        _groups.Add(write);
        return write.Done.Task;
    }

    private static async Task CommitAsync(IDocumentStore store, IDocumentCollection<T> collection, List<PendingWrite> group)
    {
        if (group.Count > 1)
        {
            var batch = new WriteBatch();
            foreach (var write in group)
            {
                _ = write.Insert ? batch.Insert(collection, write.Doc) : batch.Replace(collection, write.Doc);
            }

            try
            {
                await store.CommitAsync(batch, CancellationToken.None);
                group.ForEach(w => w.Done.TrySetResult(true));
                return;
            }
            catch (Exception e) when (e is DuplicateDocumentException or ConcurrencyConflictException or DocumentNotFoundException)
            {
                // One write of the group is refused; the rest must not be: each on its own, with its own answer.
            }
            catch (Exception e)
            {
                group.ForEach(w => w.Done.TrySetException(e));
                return;
            }
        }

        foreach (var write in group)
        {
            try
            {
                if (write.Insert)
                {
                    await collection.InsertAsync(write.Doc, CancellationToken.None);
                }
                else
                {
                    await collection.ReplaceAsync(write.Doc, CancellationToken.None);
                }

                write.Done.TrySetResult(true);
            }
            catch (Exception e) when (e is DuplicateDocumentException or ConcurrencyConflictException)
            {
                write.Done.TrySetResult(false);
            }
            catch (Exception e)
            {
                write.Done.TrySetException(e);
            }
        }
    }

    private sealed record PendingWrite(bool Insert, T Doc)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
