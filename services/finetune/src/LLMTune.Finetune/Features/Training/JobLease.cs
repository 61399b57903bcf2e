using LLMTune.Finetune.Features.Jobs;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Training;

/// <summary>The job is no longer this worker's (cancelled, or reclaimed after the lease expired).</summary>
public sealed class LeaseLostException() : Exception("The job is no longer owned by this worker.");

/// <summary>Renews a running job's lease; losing it (cancelled elsewhere, or reclaimed) stops the run.</summary>
public sealed class JobLease(JobStore jobs, TimeProvider time, ILogger logger, string workerId, TimeSpan duration)
{
    public async Task RenewWhileRunningAsync(string jobId, RunningJob handle, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(duration / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                FineTuneJob? renewed;
                try
                {
                    renewed = await jobs.UpdateAsync(jobId, j => j.LeaseOwner == workerId && !j.IsFinished, j => j.LeaseExpiresAt = jobs.Now + duration, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Renewing the lease of job {JobId} failed; retrying", jobId);
                    continue;
                }

                if (renewed is null)
                {
                    var current = await jobs.GetAsync(jobId, ct);
                    handle.Stop(current?.Status == JobStatus.Cancelled ? StopReason.CancelledByUser : StopReason.LeaseLost);
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
