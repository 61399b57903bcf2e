using System.Globalization;
using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;

namespace LLMTune.Finetune.Features.Jobs;

/// <summary>Jobs and their events in the document store: reads, lists, the fair claim and owner-conditional writes.</summary>
public sealed class JobStore(IDocumentStore store, EventOutbox outbox, TimeProvider time)
{
    private static long _eventCounter;
    private readonly IDocumentCollection<FineTuneJob> _jobs = store.Collection<FineTuneJob>(FineTuneJob.Collection);
    private readonly IDocumentCollection<JobEvent> _events = store.Collection<JobEvent>(JobEvent.Collection);
    private readonly IDocumentCollection<JobCheckpoint> _checkpoints = store.Collection<JobCheckpoint>(JobCheckpoint.Collection);

    public DateTime Now => time.GetUtcNow().UtcDateTime;

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await _jobs.EnsureIndexAsync(j => j.WorkspaceId, ct: ct);
        await _jobs.EnsureIndexAsync(j => j.Status, ct: ct);
        await _jobs.EnsureIndexAsync(j => j.CreatedAt, ct: ct);
        await _events.EnsureIndexAsync(e => e.JobId, ct: ct);
        await _checkpoints.EnsureIndexAsync(c => c.JobId, ct: ct);
    }

    /// <summary>Records a new job together with the event that announces it (one write, through the outbox).</summary>
    public Task InsertAsync(FineTuneJob job, object announcement, CancellationToken ct) =>
        outbox.Write().Insert(_jobs, job).Add(announcement).CommitAsync(ct);

    public Task<FineTuneJob?> GetAsync(string jobId, CancellationToken ct) => _jobs.GetAsync(jobId, ct);

    /// <summary>The job if it belongs to the workspace; another workspace's job is simply not found.</summary>
    public async Task<FineTuneJob?> GetAsync(string workspaceId, string jobId, CancellationToken ct) =>
        await _jobs.GetAsync(jobId, ct) is { } job && job.WorkspaceId == workspaceId ? job : null;

    public Task<Page<FineTuneJob>> ListAsync(string workspaceId, PageRequest page, CancellationToken ct) =>
        _jobs.FindPageAsync(page, time, asOf => j => j.WorkspaceId == workspaceId && j.CreatedAt <= asOf, j => j.CreatedAt, j => j.Id, ct);

    public Task<Page<JobEvent>> ListEventsAsync(string jobId, PageRequest page, CancellationToken ct) =>
        _events.FindPageAsync(page, time, asOf => e => e.JobId == jobId && e.CreatedAt <= asOf, e => e.CreatedAt, e => e.Id, ct);

    public Task AddCheckpointAsync(JobCheckpoint checkpoint, CancellationToken ct) => _checkpoints.InsertAsync(checkpoint, ct);

    public Task<Page<JobCheckpoint>> ListCheckpointsAsync(string jobId, PageRequest page, CancellationToken ct) =>
        _checkpoints.FindPageAsync(page, time, asOf => c => c.JobId == jobId && c.CreatedAt <= asOf, c => c.CreatedAt, c => c.Id, ct);

    public Task<IReadOnlyList<JobCheckpoint>> CheckpointsOfAsync(string jobId, CancellationToken ct) =>
        _checkpoints.FindAsync(c => c.JobId == jobId, FindOptions<JobCheckpoint>.OrderBy(c => c.CreatedAt).ThenBy(c => c.Id), ct);

    public async Task<JobCheckpoint?> GetCheckpointAsync(string jobId, string checkpointId, CancellationToken ct) =>
        await _checkpoints.GetAsync(checkpointId, ct) is { } checkpoint && checkpoint.JobId == jobId ? checkpoint : null;

    public async Task DeleteCheckpointsAsync(string jobId, CancellationToken ct)
    {
        foreach (var checkpoint in await CheckpointsOfAsync(jobId, ct))
        {
            await _checkpoints.DeleteAsync(checkpoint.Id, ct);
        }
    }

    public async Task AddEventAsync(FineTuneJob job, string type, string message, Action<JobEvent>? fill, CancellationToken ct)
    {
        var now = Now;
        var sequence = Interlocked.Increment(ref _eventCounter) % 1_000_000;
        var entry = new JobEvent
        {
            Id = string.Create(CultureInfo.InvariantCulture, $"ftevt_{now.Ticks:D19}{sequence:D6}{Base62.Random(6)}"),
            JobId = job.Id,
            WorkspaceId = job.WorkspaceId,
            Type = type,
            Message = message,
            CreatedAt = now,
        };
        fill?.Invoke(entry);
        await _events.InsertAsync(entry, ct);
    }

    public Task<IReadOnlyList<JobEvent>> EventsOfAsync(string jobId, CancellationToken ct) =>
        _events.FindAsync(e => e.JobId == jobId, FindOptions<JobEvent>.OrderBy(e => e.CreatedAt).ThenBy(e => e.Id), ct);

    /// <summary>
    /// Applies <paramref name="update"/> only while <paramref name="workerId"/> still holds the job's lease; the event
    /// <paramref name="announce"/> makes of the updated job (null for none) is recorded in the same write.
    /// </summary>
    public Task<FineTuneJob?> UpdateOwnedAsync(string jobId, string workerId, Action<FineTuneJob> update, CancellationToken ct, Func<FineTuneJob, object?>? announce = null) =>
        UpdateWhereAsync(jobId, j => j.LeaseOwner == workerId && (j.Status == JobStatus.Validating || j.Status == JobStatus.Training), update, announce, ct);

    /// <summary>The owning worker's last write: applies <paramref name="update"/> and gives up the lease in the same write.</summary>
    public Task<FineTuneJob?> ReleaseAsync(string jobId, string workerId, Action<FineTuneJob> update, CancellationToken ct, Func<FineTuneJob, object?>? announce = null) =>
        UpdateOwnedAsync(jobId, workerId, j =>
        {
            update(j);
            j.ReleaseLease();
        }, ct, announce);

    public Task<FineTuneJob?> UpdateAsync(string jobId, Func<FineTuneJob, bool> applies, Action<FineTuneJob> update, CancellationToken ct) =>
        UpdateWhereAsync(jobId, applies, update, null, ct);

    private async Task<FineTuneJob?> UpdateWhereAsync(string jobId, Func<FineTuneJob, bool> applies, Action<FineTuneJob> update, Func<FineTuneJob, object?>? announce, CancellationToken ct)
    {
        // Optimistic read-check-replace: the predicate is arbitrary code, so it is checked on the read copy and the
        // version guards against a write in between (then read again).
        while (true)
        {
            var job = await _jobs.GetAsync(jobId, ct);
            if (job is null || !applies(job))
            {
                return null;
            }

            update(job);
            job.UpdatedAt = Now;
            try
            {
                var write = outbox.Write().Replace(_jobs, job);
                if (announce?.Invoke(job) is { } announcement)
                {
                    write.Add(announcement);
                }

                await write.CommitAsync(ct);
                return job;
            }
            catch (ConcurrencyConflictException)
            {
            }
        }
    }

    /// <summary>
    /// Claims the next job for <paramref name="workerId"/>: queued jobs, and jobs whose worker's lease expired (it died).
    /// Priority jobs (plans with a priority queue) before all others; within each queue fair across workspaces: the
    /// workspace served longest ago goes first, and within it the oldest job.
    /// </summary>
    public async Task<FineTuneJob?> ClaimNextAsync(string workerId, TimeSpan lease, int candidates, CancellationToken ct)
    {
        var now = Now;
        var waiting = await _jobs.FindAsync(
            j => j.Status == JobStatus.Queued
                 || ((j.Status == JobStatus.Validating || j.Status == JobStatus.Training) && j.LeaseExpiresAt < now),
            FindOptions<FineTuneJob>.OrderByDescending(j => j.Priority).ThenBy(j => j.CreatedAt).ThenBy(j => j.Id).Take(candidates),
            ct);
        if (waiting.Count == 0)
        {
            return null;
        }

        var lastServed = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var workspace in waiting.Select(j => j.WorkspaceId).Distinct())
        {
            var latest = await _jobs.FindAsync(
                j => j.WorkspaceId == workspace && j.ClaimedAt != null,
                FindOptions<FineTuneJob>.OrderByDescending(j => j.ClaimedAt).Take(1),
                ct);
            lastServed[workspace] = latest.Count > 0 ? latest[0].ClaimedAt!.Value : DateTime.MinValue;
        }

        // The priority queue first; within a queue round robin: workspaces in the order they were last served, each
        // offering its oldest waiting job.
        var order = waiting
            .GroupBy(j => (j.Priority, j.WorkspaceId))
            .OrderByDescending(g => g.Key.Priority)
            .ThenBy(g => lastServed[g.Key.WorkspaceId])
            .ThenBy(g => g.First().CreatedAt)
            .SelectMany(g => g);
        foreach (var candidate in order)
        {
            var id = candidate.Id;
            var claimed = await _jobs.FindOneAndUpdateAsync(
                j => j.Id == id && (j.Status == JobStatus.Queued
                     || ((j.Status == JobStatus.Validating || j.Status == JobStatus.Training) && j.LeaseExpiresAt < now)),
                j =>
                {
                    // Out of "queued" in the same write, so no other worker's filter matches it while the lease lives.
                    j.Status = JobStatus.Validating;
                    j.LeaseOwner = workerId;
                    j.LeaseExpiresAt = now + lease;
                    j.ClaimedAt = now;
                    j.Attempts++;
                    j.UpdatedAt = now;
                },
                null, ct);
            if (claimed is not null)
            {
                return claimed;
            }
        }

        return null;
    }

    public Task<FineTuneJob?> SetFineTunedModelAsync(string jobId, string workspaceId, string modelId, CancellationToken ct)
    {
        var now = Now;
        return _jobs.FindOneAndUpdateAsync(
            j => j.Id == jobId && j.WorkspaceId == workspaceId && j.FineTunedModel != modelId,
            j =>
            {
                j.FineTunedModel = modelId;
                j.UpdatedAt = now;
            },
            null, ct);
    }
}
