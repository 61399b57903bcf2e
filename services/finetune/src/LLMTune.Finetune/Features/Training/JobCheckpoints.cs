using System.Globalization;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// A job's scratch folder and its resume point: checkpoints are written on the worker's disk, mirrored to the
/// artifact store so any worker can resume, restored before a run, and discarded when the job is over.
/// </summary>
public sealed class JobCheckpoints(JobStore jobs, IArtifactStore artifacts, IOptions<FinetuneOptions> options, ILogger<JobCheckpoints> logger)
{
    public string JobDirectory(string jobId) => Path.Combine(Path.GetFullPath(options.Value.WorkPath), "jobs", jobId);

    public string CheckpointDirectory(string jobId) => Path.Combine(JobDirectory(jobId), "checkpoints");

    /// <summary>
    /// A job that trained before (here, on another machine, or on a wiped disk) resumes from the checkpoint mirrored to
    /// the artifact store; without one, from a checkpoint on this disk if there is one.
    /// </summary>
    public async Task RestoreAsync(string jobId, CancellationToken ct)
    {
        // The stored copy wins: every checkpoint is mirrored as soon as it is written, so it is the newest one of
        // whichever worker ran last, while a copy on this disk may be from an earlier attempt here.
        var local = Engine.Training.LlamaTrainer.CheckpointPath(CheckpointDirectory(jobId));
        await using var mirrored = await artifacts.OpenReadAsync(ArtifactKeys.Checkpoint(jobId), ct);
        if (mirrored is not null)
        {
            await LimitedCopy.WriteFileAtomicallyAsync(local, mirrored, long.MaxValue, ct);
            logger.LogInformation("Restored the checkpoint of job {JobId} from the artifact store", jobId);
        }
    }

    /// <summary>Copies the checkpoint just written to the artifact store, while <paramref name="workerId"/> still owns the job.</summary>
    public async Task MirrorAsync(string jobId, string workerId, string path, CancellationToken ct)
    {
        try
        {
            // A worker that lost the job must not replace the checkpoint of the one that has it now.
            if (await jobs.GetAsync(jobId, ct) is not { } current || current.LeaseOwner != workerId)
            {
                return;
            }

            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            await artifacts.SaveAsync(ArtifactKeys.Checkpoint(jobId), file, long.MaxValue, ct);
        }
        catch (FileNotFoundException)
        {
            // the run finished and removed it: nothing left to resume from
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The local checkpoint still serves a resume on this machine.
            logger.LogWarning(e, "Mirroring the checkpoint of job {JobId} to the artifact store failed", jobId);
        }
    }

    /// <summary>
    /// Keeps the result as it stood at a step with a new best eval loss: in the artifact store for download (and to
    /// deploy), recorded on the job, and in its history. A worker that lost the job keeps nothing.
    /// </summary>
    public async Task KeepSnapshotAsync(FineTuneJob job, string workerId, TrainingRunProgress report, CancellationToken ct)
    {
        try
        {
            await KeepAsync(job, workerId, report, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The run's own result still holds its best weights; only this download is missing.
            logger.LogWarning(e, "Keeping the step {Step} checkpoint of job {JobId} failed", report.Step, job.Id);
        }
    }

    private async Task KeepAsync(FineTuneJob job, string workerId, TrainingRunProgress report, CancellationToken ct)
    {
        if (await jobs.GetAsync(job.Id, ct) is not { } current || current.LeaseOwner != workerId || report.SnapshotPath is not { } path || report.EvalLoss is not { } evalLoss)
        {
            return;
        }

        var lora = job.Adapter != FineTuneJob.FullAdapter;
        var key = ArtifactKeys.Snapshot(job.Id, job.Attempts, report.Step, lora);
        long bytes;
        await using (var file = File.OpenRead(path))
        {
            bytes = await artifacts.SaveAsync(key, file, long.MaxValue, ct);
        }

        File.Delete(path);
        var checkpoint = new JobCheckpoint
        {
            Id = RequestIdMiddleware.NewId("ftckpt"),
            JobId = job.Id,
            WorkspaceId = job.WorkspaceId,
            Attempt = job.Attempts,
            Step = report.Step,
            Epoch = report.Epoch,
            Loss = report.Loss,
            EvalLoss = evalLoss,
            Kind = lora ? "lora" : "full",
            ArtifactKey = key,
            Bytes = bytes,
            CreatedAt = jobs.Now,
        };
        await jobs.AddCheckpointAsync(checkpoint, ct);
        await jobs.AddEventAsync(current, "checkpoint", string.Create(CultureInfo.InvariantCulture,
            $"Checkpoint {checkpoint.Id} saved at step {report.Step} (epoch {report.Epoch}): eval loss {evalLoss:F4}, the best so far."), e =>
            {
                e.Step = report.Step;
                e.Epoch = report.Epoch;
                e.Loss = report.Loss;
                e.EvalLoss = evalLoss;
            }, ct);
    }

    /// <summary>Removes the job's checkpoints here and in the store (a failed or finished job never resumes).</summary>
    public async Task DiscardAsync(string jobId)
    {
        DeleteDirectory(CheckpointDirectory(jobId));
        try
        {
            await artifacts.DeleteAsync(ArtifactKeys.Checkpoint(jobId), CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not delete the mirrored checkpoint of job {JobId}", jobId);
        }
    }

    /// <summary>Removes the scratch folder (the result is in the artifact store by now, or no longer wanted).</summary>
    public void DeleteScratch(string jobId) => DeleteDirectory(JobDirectory(jobId));

    /// <summary>A cancelled job leaves nothing behind: its files in the store and its scratch folder go.</summary>
    public async Task DeleteEverythingAsync(string jobId)
    {
        await artifacts.DeleteAsync(ArtifactKeys.JobPrefix(jobId), CancellationToken.None);
        await jobs.DeleteCheckpointsAsync(jobId, CancellationToken.None);
        DeleteScratch(jobId);
    }

    private static void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}
