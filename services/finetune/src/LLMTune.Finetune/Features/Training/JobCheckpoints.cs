using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Artifacts;
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
