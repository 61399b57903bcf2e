using LLMTune.Contracts;
using LLMTune.Platform.Outbox;

namespace LLMTune.Batch.Features.Batches;

/// <summary>
/// Every message the batch service sends, in one place, recorded in the outbox (no request waits on the broker; the
/// dispatcher publishes). Each follows the store write it announces; the batch's due times and announced flag recover
/// a crash in between.
/// </summary>
public sealed class BatchEvents(EventOutbox outbox, TimeProvider time)
{
    public Task PublishQueuedAsync(InferenceBatch batch, CancellationToken ct) =>
        outbox.PublishAsync(new BatchQueued(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Total), ct);

    public Task RequestItemAsync(BatchItem item, CancellationToken ct) =>
        outbox.PublishAsync(new RunBatchItem(
            item.WorkspaceId, item.BatchId, time.GetUtcNow(), item.BatchId, item.Id, item.KeyId, item.ModelId, item.Prompt,
            (float?)item.Temperature, item.MaxTokens, (float?)item.TopP, item.Attempts), ct);

    public Task PublishCompletedAsync(InferenceBatch batch, CancellationToken ct) =>
        outbox.PublishAsync(new BatchCompleted(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Succeeded, batch.Failed, batch.WebhookUrl), ct);
}
