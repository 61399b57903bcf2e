using LLMTune.Contracts;
using LLMTune.Platform.Storage;

namespace LLMTune.Inference.Features.BatchItems;

/// <summary>
/// The inference service's own record of a batch item it ran (its inbox): claimed while running, then holding the
/// outcome, so a repeated request republishes the outcome instead of running (and metering) the item again.
/// </summary>
public sealed class BatchItemRun : IDocument
{
    public const string Collection = "inference_batch_runs";

    /// <summary>The item key of <see cref="RunBatchItem"/>.</summary>
    public string Id { get; set; } = "";

    public long Version { get; set; }
    public bool Done { get; set; }
    public DateTime LeaseExpiresAt { get; set; }
    public DateTime? CompletedAt { get; set; }

    /// <summary>The outcome as published, stored as JSON (kept whole so a republish is identical).</summary>
    public string? OutcomeJson { get; set; }
}

/// <summary>Claims, completes and releases <see cref="BatchItemRun"/>s.</summary>
public sealed class BatchItemRuns(IDocumentStore store, TimeProvider time)
{
    /// <summary>Finished runs are kept this long for repeats, then expire.</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    private readonly IDocumentCollection<BatchItemRun> _runs = store.Collection<BatchItemRun>(BatchItemRun.Collection);

    public Task EnsureIndexesAsync(CancellationToken ct) => _runs.EnsureIndexAsync(r => r.CompletedAt, expireAfter: Retention, ct: ct);

    /// <summary>
    /// Claims the item for this replica; or returns the finished run (to republish); or null when another replica is
    /// running it under a live lease (it will publish the outcome; if it dies, a later request takes over).
    /// </summary>
    public async Task<(bool Claimed, BatchItemRun? Finished)> ClaimAsync(string itemKey, TimeSpan lease, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        try
        {
            await _runs.InsertAsync(new BatchItemRun { Id = itemKey, LeaseExpiresAt = now + lease }, ct);
            return (true, null);
        }
        catch (DuplicateDocumentException)
        {
        }

        var takenOver = await _runs.FindOneAndUpdateAsync(r => r.Id == itemKey && !r.Done && r.LeaseExpiresAt < now, r => r.LeaseExpiresAt = now + lease, null, ct);
        if (takenOver is not null)
        {
            return (true, null);
        }

        var existing = await _runs.GetAsync(itemKey, ct);
        return (false, existing is { Done: true } ? existing : null);
    }

    public Task CompleteAsync(string itemKey, string outcomeJson, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return _runs.FindOneAndUpdateAsync(r => r.Id == itemKey, r =>
        {
            r.Done = true;
            r.CompletedAt = now;
            r.OutcomeJson = outcomeJson;
        }, null, ct);
    }

    /// <summary>Gives an unfinished claim back (the model was busy, or this replica is stopping) so the next request runs it.</summary>
    public Task ReleaseAsync(string itemKey, CancellationToken ct) =>
        _runs.FindOneAndUpdateAsync(r => r.Id == itemKey && !r.Done, r => r.LeaseExpiresAt = DateTime.UnixEpoch, null, ct);
}
