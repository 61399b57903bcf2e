using LLMTune.Contracts;
using Microsoft.Extensions.Logging;

namespace LLMTune.Batch.Features.Batches;

/// <summary>
/// Moves batches forward: records item results once, keeps the counts, sets the final status once and announces it.
/// Every step is safe to repeat, so repeated results, two replicas and restarts never finish an item or a batch twice.
/// </summary>
public sealed class BatchProgress(BatchStore store, ILogger<BatchProgress> logger)
{
    private readonly Lock _refreshGate = new();
    private readonly Dictionary<string, RefreshQueue> _refreshes = new(StringComparer.Ordinal);

    /// <summary>Records an item's result; a result for an item that already finished (or was cancelled) changes nothing.</summary>
    public async Task RecordAsync(BatchItemCompleted result, CancellationToken ct)
    {
        var failed = result.ErrorCode is not null;
        var item = await store.FinishItemAsync(result.ItemKey, i =>
        {
            i.Status = failed ? BatchItemStatus.Failed : BatchItemStatus.Succeeded;
            i.Model = result.Model;
            i.Text = result.Text;
            i.PromptTokens = result.PromptTokens;
            i.CompletionTokens = result.CompletionTokens;
            i.LatencyMs = result.LatencyMs;
            i.FinishReason = result.FinishReason;
            i.ErrorStatus = result.ErrorStatus;
            i.ErrorCode = result.ErrorCode;
            i.ErrorMessage = result.ErrorMessage;
            i.ErrorParam = result.ErrorParam;
            i.ResponseBody = result.ResponseBody;
        }, ct);
        if (item is null)
        {
            return;
        }

        await RefreshAsync(item.BatchId, ct);
    }

    /// <summary>Fails an item whose result never came after the last request.</summary>
    public async Task TimeOutAsync(BatchItem pending, CancellationToken ct)
    {
        var item = await store.FinishItemAsync(pending.Id, i =>
        {
            i.Status = BatchItemStatus.Failed;
            i.FinishReason = "error";
            i.ErrorStatus = 504;
            i.ErrorCode = "item_timeout";
            i.ErrorMessage = $"No result after {i.Attempts} requests to the inference service.";
        }, ct);
        if (item is not null)
        {
            logger.LogWarning("Batch {BatchId} item {ItemKey} timed out after {Attempts} requests", item.BatchId, item.Id, item.Attempts);
            await RefreshAsync(item.BatchId, ct);
        }
    }

    /// <summary>
    /// Brings the batch's counts up to its items and, when none is pending any more, sets the final status and records
    /// BatchCompleted in the same write. Counts only grow (items only leave pending), so concurrent refreshes written
    /// in any order end at the right numbers, and only the write that sets the final status announces it.
    /// </summary>
    /// <remarks>
    /// Callers of one batch share refreshes: a caller waits for the next refresh to start (one already queued, or a new
    /// one queued behind the running one), which counts every item finished before the call. Results that arrive
    /// together (a wave of the model's batch) then cost one count of the batch's items instead of one each.
    /// </remarks>
    public Task RefreshAsync(string batchId, CancellationToken ct)
    {
        TaskCompletionSource queued;
        Task running;
        lock (_refreshGate)
        {
            if (!_refreshes.TryGetValue(batchId, out var queue))
            {
                _refreshes[batchId] = queue = new RefreshQueue();
            }

            if (queue.Queued is { } waiting)
            {
                return waiting.Task.WaitAsync(ct); // not started yet, so it counts this caller's item
            }

            queued = queue.Queued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            running = queue.Running ?? Task.CompletedTask;
        }

        _ = RunQueuedRefreshAsync(batchId, running, queued);
        return queued.Task.WaitAsync(ct);
    }

    private async Task RunQueuedRefreshAsync(string batchId, Task running, TaskCompletionSource queued)
    {
        await running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_refreshGate)
        {
            var queue = _refreshes[batchId];
            queue.Queued = null;
            queue.Running = queued.Task;
        }

        try
        {
            // Shared by several callers, so none of their tokens; one store round trip is short.
            await RefreshNowAsync(batchId, CancellationToken.None);
            queued.SetResult();
        }
        catch (Exception e)
        {
            queued.SetException(e);
        }
        finally
        {
            lock (_refreshGate)
            {
                var queue = _refreshes[batchId];
                if (queue.Running == queued.Task)
                {
                    queue.Running = null;
                    if (queue.Queued is null)
                    {
                        _refreshes.Remove(batchId);
                    }
                }
            }
        }
    }

    private async Task RefreshNowAsync(string batchId, CancellationToken ct)
    {
        var (succeeded, failed, cancelled) = await store.CountAsync(batchId, ct);
        var now = store.Now;
        var written = await store.UpdateAsync(batchId, b =>
        {
            b.Succeeded = Math.Max(b.Succeeded, succeeded);
            b.Failed = Math.Max(b.Failed, failed);
            b.Cancelled = Math.Max(b.Cancelled, cancelled);
            if (InferenceBatch.IsFinal(b.Status))
            {
                return;
            }

            b.StartedAt ??= now;
            if (b.Succeeded + b.Failed + b.Cancelled < b.Total)
            {
                b.Status = BatchStatus.Processing;
                return;
            }

            b.Status = b.Failed == 0 ? BatchStatus.Completed : b.Succeeded == 0 ? BatchStatus.Failed : BatchStatus.CompletedWithErrors;
            b.CompletedAt = now;
        }, ct);

        if (written is ({ } batch, true))
        {
            logger.LogInformation("Batch {BatchId} finished: {Status}, {Succeeded} succeeded, {Failed} failed", batch.Id, batch.Status, batch.Succeeded, batch.Failed);
        }
    }

    /// <summary>Records the BatchCompleted of a batch that finished before the outbox and was never announced.</summary>
    public Task AnnounceAsync(InferenceBatch batch, CancellationToken ct) => store.UpdateAsync(batch.Id, _ => { }, ct);

    /// <summary>Cancels the batch's pending items; finished items keep their results. Null when the batch had already finished.</summary>
    public async Task<InferenceBatch?> CancelAsync(string batchId, CancellationToken ct)
    {
        var batch = await store.CancelAsync(batchId, ct);
        if (batch is null)
        {
            return null;
        }

        foreach (var item in await store.PendingItemsAsync(batchId, ct))
        {
            await store.FinishItemAsync(item.Id, i =>
            {
                i.Status = BatchItemStatus.Cancelled;
                i.FinishReason = "cancelled";
            }, ct);
        }

        await RefreshAsync(batchId, ct);
        return await store.GetAsync(batchId, ct);
    }

    private sealed class RefreshQueue
    {
        public Task? Running { get; set; }
        public TaskCompletionSource? Queued { get; set; }
    }
}
