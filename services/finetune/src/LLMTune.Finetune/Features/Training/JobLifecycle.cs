using System.Globalization;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Jobs;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Training;

/// <summary>What a completed job records: where its result is, and which step's weights deploy.</summary>
public sealed record CompletedTraining(
    string ArtifactLocation, string ArtifactKind, double? FinalEvalLoss, int DeployedStep, double? DeployedEvalLoss, string? DeployedCheckpointId, bool StoppedEarly, string Summary);

/// <summary>
/// Every job state change that other services hear about, in one place: each method records the change on the job
/// (and its history) and then publishes the matching event. Writes by a worker are conditional on its lease.
/// </summary>
public sealed class JobLifecycle(JobStore jobs, IBus bus, TimeProvider time, ILogger<JobLifecycle> logger)
{
    public async Task QueuedAsync(FineTuneJob job, CancellationToken ct)
    {
        await jobs.InsertAsync(job, ct);
        await jobs.AddEventAsync(job, "status", "Job created and queued.", e => e.Status = "queued", ct);
        await bus.Publish(new TrainingQueued(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel), ct);
    }

    /// <summary>Training begins (or resumes); <see cref="TrainingStarted"/> is announced once per job, not per attempt.</summary>
    public async Task<FineTuneJob> TrainingAsync(FineTuneJob job, string workerId, CancellationToken ct)
    {
        job = await jobs.UpdateOwnedAsync(job.Id, workerId, j =>
        {
            j.Status = JobStatus.Training;
            j.StartedAt ??= jobs.Now;
        }, ct) ?? throw new LeaseLostException();
        await jobs.AddEventAsync(job, "status", job.Step > 0 ? $"Training resumes (last recorded step {job.Step})." : "Training started.", e => e.Status = "training", ct);
        if (!job.StartedAnnounced)
        {
            await bus.Publish(new TrainingStarted(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel, job.Epochs, job.WebhookUrl), ct);
            job = await jobs.UpdateOwnedAsync(job.Id, workerId, j => j.StartedAnnounced = true, ct) ?? throw new LeaseLostException();
        }

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
        }, ct);
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
        await bus.Publish(new TrainingProgressed(updated.WorkspaceId, updated.Id, time.GetUtcNow(), updated.Id, updated.Progress,
            p.Epoch, p.TotalEpochs, p.Loss, p.EvalLoss, p.TokensPerSecond), ct);
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
        }, CancellationToken.None);
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
        await AnnounceCompletionAsync(completed, CancellationToken.None);
        return completed;
    }

    /// <summary>A completion recorded but never announced (the process died in between) is announced on start.</summary>
    public async Task AnnounceUnannouncedCompletionsAsync(CancellationToken ct)
    {
        foreach (var job in await jobs.UnannouncedCompletionsAsync(ct))
        {
            await AnnounceCompletionAsync(job, ct);
        }
    }

    public async Task<FineTuneJob?> FailedAsync(string jobId, string workerId, string code, string message)
    {
        var failed = await jobs.ReleaseAsync(jobId, workerId, j =>
        {
            j.Status = JobStatus.Failed;
            j.ErrorCode = code;
            j.ErrorMessage = message;
            j.FinishedAt = jobs.Now;
        }, CancellationToken.None);
        if (failed is null)
        {
            return null;
        }

        logger.LogWarning("Fine-tune job {JobId} failed: {Code} {Message}", jobId, code, message);
        await jobs.AddEventAsync(failed, "status", message, e => e.Status = "failed", CancellationToken.None);
        await bus.Publish(new TrainingFailed(failed.WorkspaceId, failed.Id, time.GetUtcNow(), failed.Id, failed.BaseModel, code, message, failed.WebhookUrl), CancellationToken.None);
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

    private async Task AnnounceCompletionAsync(FineTuneJob job, CancellationToken ct)
    {
        await bus.Publish(new TrainingCompleted(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel, job.ArtifactLocation!, job.ArtifactKind!, job.WebhookUrl), ct);
        await jobs.MarkCompletionAnnouncedAsync(job.Id, ct);
    }
}
