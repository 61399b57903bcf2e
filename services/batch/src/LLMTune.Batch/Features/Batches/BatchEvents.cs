using LLMTune.Contracts;

namespace LLMTune.Batch.Features.Batches;

/// <summary>
/// Every message the batch service sends, in one place. Each is written to the outbox by <see cref="BatchStore"/> in the
/// same store write as the state change it announces (no request waits on the broker; the dispatcher publishes), so a
/// crash or an outage between the two loses nothing.
/// </summary>
public sealed class BatchEvents(TimeProvider time)
{
    public BatchQueued Queued(InferenceBatch batch) =>
        new(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Total);

    public RunBatchItem Request(BatchItem item) =>
        new(item.WorkspaceId, item.BatchId, time.GetUtcNow(), item.BatchId, item.Id, item.KeyId, item.ModelId, item.Prompt,
            (float?)item.Temperature, item.MaxTokens, (float?)item.TopP, item.Attempts, item.OpenAiUrl, item.OpenAiBody);

    public BatchCancelled Cancelled(InferenceBatch batch) => new(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id);

    public BatchCompleted Completed(InferenceBatch batch) =>
        new(batch.WorkspaceId, batch.Id, time.GetUtcNow(), batch.Id, batch.ModelId, batch.Succeeded, batch.Failed, batch.WebhookUrl);
}
