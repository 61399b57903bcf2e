using LLMTune.Contracts;
using MassTransit;

namespace LLMTune.Batch.Features.Batches;

/// <summary>Every message the batch service sends, in one place (so they can move to a transactional outbox together).</summary>
public sealed class BatchEvents(IBus bus, TimeProvider time)
{
    public Task PublishQueuedAsync(InferenceBatch batch, CancellationToken ct) =>
        bus.Publish(new BatchQueued(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Total), ct);

    public Task RequestItemAsync(BatchItem item, CancellationToken ct) =>
        bus.Publish(new RunBatchItem(
            item.WorkspaceId, item.BatchId, time.GetUtcNow(), item.BatchId, item.Id, item.KeyId, item.ModelId, item.Prompt,
            (float?)item.Temperature, item.MaxTokens, (float?)item.TopP, item.Attempts), ct);

    public Task PublishCompletedAsync(InferenceBatch batch, CancellationToken ct) =>
        bus.Publish(new BatchCompleted(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Succeeded, batch.Failed, batch.WebhookUrl), ct);
}
