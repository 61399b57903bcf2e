using System.Globalization;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Jobs;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Training;

/// <summary>What a completed job records: where its result is, and which step's weights deploy.</summary>
public sealed record CompletedTraining(
    string ArtifactLocation, string ArtifactKind, double? FinalEvalLoss, int DeployedStep, double? DeployedEvalLoss, string? DeployedCheckpointId, bool StoppedEarly, long TrainedTokens, string Summary);

/// <summary>
/// Every job state change that other services hear about, in one place: each method records the change on the job
/// and records the matching event in the same write (the outbox publishes it). Writes by a worker are conditional on its lease.
/// </summary>
public sealed class JobLifecycle(JobStore jobs, TimeProvider time, ILogger<JobLifecycle> logger)
{
    public async Task QueuedAsync(FineTuneJob job, CancellationToken ct)
    {
        await jobs.InsertAsync(job, new TrainingQueued(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel), ct);
        await jobs.AddEventAsync(job, "status", "Job created and queued.", e => e.Status = "queued", ct);
    }

    /// <summary>Training begins (or resumes); <see cref="TrainingStarted"/> is announced once per job, not per attempt.</summary>
    public async Task<FineTuneJob> TrainingAsync(FineTuneJob job, string workerId, CancellationToken ct)
    {
        var firstStart = false;
        job = await jobs.UpdateOwnedAsync(job.Id, workerId, j =>
        {
            j.Status = JobStatus.Training;
            j.StartedAt ??= jobs.Now;
            firstStart = !j.StartedAnnounced; // a resumed job was announced by its first attempt
            j.StartedAnnounced = true;
        }, ct, j => firstStart ? new TrainingStarted(j.WorkspaceId, j.Id, time.GetUtcNow(), j.Id, j.BaseModel, j.Epochs, j.WebhookUrl) : null)
            ?? throw new LeaseLostException();
        await jobs.AddEventAsync(job, "status", job.Step > 0 ? $"Training resumes (last recorded step {job.Step})." : "Training started.", e => e.Status = "training", ct);

        return job;
    }

    /// <summary>Records a progress report on the job and in its history; null when the job is no longer this worker's.</summary>
    public async Task<FineTuneJob?> ProgressedAsync(string jobId, string workerId, TrainingRunProgress p, CancellationToken ct)
    {
        var updated = await jobs.UpdateOwnedAsync(jobId, workerId, j =>
        {
            j.Step = p.Step;
            j.TotalSteps = p.TotalSteps;
            j.CurrentEpoch = p.Epoch;
            // Shown below 100 until the result is written and the job is completed.
            j.Progress = Math.Min(Math.Round(p.Percent, 1), 99.9);
            j.Loss = p.Loss;
            j.EvalLoss = p.EvalLoss ?? j.EvalLoss;
            j.TokensPerSecond = Math.Round(p.TokensPerSecond, 1);
        }, ct, j => new TrainingProgressed(j.WorkspaceId, j.Id, time.GetUtcNow(), j.Id, j.Progress, p.Epoch, p.TotalEpochs, p.Loss, p.EvalLoss, p.TokensPerSecond));
        if (updated is null)
        {
            return null;
        }

        await jobs.AddEventAsync(updated, p.EvalLoss is null ? "progress" : "evaluation", p.EvalLoss is { } eval
            ? string.Create(CultureInfo.InvariantCulture, $"Epoch {p.Epoch}/{p.TotalEpochs} done at step {p.Step}/{p.TotalSteps}: loss {p.Loss:F4}, eval loss {eval:F4}.")
            : string.Create(CultureInfo.InvariantCulture, $"Step {p.Step}/{p.TotalSteps} (epoch {p.Epoch}/{p.TotalEpochs}): loss {p.Loss:F4}, {p.TokensPerSecond:F0} tokens/s."),
            e =>
            {
                e.Step = p.Step;
                e.Epoch = p.Epoch;
                e.Progress = updated.Progress;
                e.Loss = p.Loss;
                e.EvalLoss = p.EvalLoss;
                e.TokensPerSecond = updated.TokensPerSecond;
            }, ct);
        return updated;
    }

    /// <summary>Records the result and releases the job; null when it was cancelled or reclaimed meanwhile (then it must not deploy).</summary>
    public async Task<FineTuneJob?> CompletedAsync(string jobId, string workerId, CompletedTraining outcome)
    {
        var completed = await jobs.ReleaseAsync(jobId, workerId, j =>
        {
            j.Status = JobStatus.Completed;
            j.Progress = 100;
            j.FinishedAt = jobs.Now;
            j.ArtifactLocation = outcome.ArtifactLocation;
            j.ArtifactKind = outcome.ArtifactKind;
            j.EvalLoss = outcome.FinalEvalLoss ?? j.EvalLoss;
            j.DeployedStep = outcome.DeployedStep;
            j.DeployedEvalLoss = outcome.DeployedEvalLoss;
            j.DeployedCheckpointId = outcome.DeployedCheckpointId;
            j.StoppedEarly = outcome.StoppedEarly;
            j.TrainedTokens = outcome.TrainedTokens;
        }, CancellationToken.None, j => new TrainingCompleted(
            j.WorkspaceId, j.Id, time.GetUtcNow(), j.Id, j.BaseModel, j.ArtifactLocation!, j.ArtifactKind!, j.WebhookUrl, j.TrainedTokens));
        if (completed is null)
        {
            return null;
        }

        // The deployed step's eval loss is in the message only: metrics on events are what was measured at that moment.
        await jobs.AddEventAsync(completed, "status", outcome.Summary, e =>
        {
            e.Status = "completed";
            e.Step = outcome.DeployedStep;
        }, CancellationToken.None);
        return completed;
    }

    public async Task<FineTuneJob?> FailedAsync(string jobId, string workerId, string code, string message)
    {
        var failed = await jobs.ReleaseAsync(jobId, workerId, j =>
        {
            j.Status = JobStatus.Failed;
            j.ErrorCode = code;
            j.ErrorMessage = message;
            j.FinishedAt = jobs.Now;
        }, CancellationToken.None, j => new TrainingFailed(j.WorkspaceId, j.Id, time.GetUtcNow(), j.Id, j.BaseModel, code, message, j.WebhookUrl));
        if (failed is null)
        {
            return null;
        }

        logger.LogWarning("Fine-tune job {JobId} failed: {Code} {Message}", jobId, code, message);
        await jobs.AddEventAsync(failed, "status", message, e => e.Status = "failed", CancellationToken.None);
        return failed;
    }

    /// <summary>Back to the queue at once (no need to wait for the lease): the next start resumes from the checkpoint.</summary>
    public async Task RequeuedAsync(string jobId, string workerId)
    {
        if (await jobs.ReleaseAsync(jobId, workerId, j => j.Status = JobStatus.Queued, CancellationToken.None) is { } requeued)
        {
            await jobs.AddEventAsync(requeued, "status", "The service is stopping; the job is queued again and resumes from its last checkpoint.", e => e.Status = "queued", CancellationToken.None);
        }
    }
}
