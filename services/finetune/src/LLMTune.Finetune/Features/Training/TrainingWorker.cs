using Amazon.Runtime;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// Claims jobs from the store (fairly, with a lease), runs each through <see cref="JobExecution"/> while renewing its
/// lease, and decides what a failure or a stop means for the job. A job whose worker died is claimed again once its
/// lease expires and resumes from its last checkpoint; on a graceful stop running jobs go back to the queue.
/// </summary>
public sealed class TrainingWorker(
    JobStore jobs,
    JobRuntime runtime,
    JobExecution execution,
    JobLifecycle lifecycle,
    JobCheckpoints checkpoints,
    TimeProvider time,
    IOptions<FinetuneOptions> options,
    ILogger<TrainingWorker> logger) : BackgroundService
{
    /// <summary>Unique per process start, so a restarted process never mistakes an old lease for its own.</summary>
    public string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var worker = options.Value.Worker;
        if (!worker.Enabled)
        {
            logger.LogInformation("Fine-tune worker disabled (Finetune:Worker:Enabled=false): this process only serves the API");
            return;
        }

        using var slots = new SemaphoreSlim(worker.Concurrency, worker.Concurrency);
        var running = new List<Task>();
        logger.LogInformation("Fine-tune worker {WorkerId} started with {Concurrency} slot(s)", WorkerId, worker.Concurrency);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await slots.WaitAsync(stoppingToken);
                FineTuneJob? job = null;
                try
                {
                    job = await jobs.ClaimNextAsync(WorkerId, worker.LeaseDuration, 200, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Claiming a fine-tune job failed");
                }

                if (job is null)
                {
                    slots.Release();
                    await runtime.WaitForWorkAsync(worker.PollInterval, stoppingToken);
                    continue;
                }

                running.RemoveAll(t => t.IsCompleted);
                running.Add(Task.Run(async () =>
                {
                    try
                    {
                        await RunAsync(job, stoppingToken);
                    }
                    finally
                    {
                        slots.Release();
                        runtime.Wake();
                    }
                }, CancellationToken.None));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Running jobs see the stop through their linked token and put themselves back in the queue.
        await Task.WhenAll(running);
    }

    private async Task RunAsync(FineTuneJob job, CancellationToken stoppingToken)
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var handle = runtime.Register(job.Id, cancellation);
        using var stopOnShutdown = stoppingToken.Register(() => handle.Stop(StopReason.Shutdown));
        using var renewal = new CancellationTokenSource();
        var lease = new JobLease(jobs, time, logger, WorkerId, options.Value.Worker.LeaseDuration);
        var renewing = lease.RenewWhileRunningAsync(job.Id, handle, renewal.Token);
        try
        {
            await execution.RunAsync(job, WorkerId, cancellation.Token);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await OnStoppedAsync(job, handle.Reason);
        }
        catch (DatasetException e)
        {
            await FailAsync(job, e.Code, e.Message);
        }
        catch (LeaseLostException)
        {
            logger.LogWarning("Job {JobId} was taken from worker {WorkerId} (cancelled or reclaimed); stopping", job.Id, WorkerId);
            await CleanUpIfCancelledAsync(job.Id);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException or IOException)
        {
            // Storage trouble (the artifact store, the scratch disk) is the operator's, and its details stay in the log.
            logger.LogError(e, "Fine-tune job {JobId} failed on storage", job.Id);
            await FailAsync(job, "storage_unavailable", "The service could not read or write the job's files; submit the job again later.");
        }
        catch (Exception e)
        {
            logger.LogError(e, "Fine-tune job {JobId} failed", job.Id);
            await FailAsync(job, "training_failed", $"Training failed: {e.Message}");
        }
        finally
        {
            await renewal.CancelAsync();
            await renewing;
            runtime.Unregister(handle);
        }
    }

    private async Task OnStoppedAsync(FineTuneJob job, StopReason reason)
    {
        switch (reason)
        {
            case StopReason.Shutdown:
                await lifecycle.RequeuedAsync(job.Id, WorkerId);
                break;
            case StopReason.CancelledByUser:
                await CleanUpIfCancelledAsync(job.Id);
                break;
            default:
                logger.LogWarning("Job {JobId} stopped on worker {WorkerId}: {Reason}", job.Id, WorkerId, reason);
                await CleanUpIfCancelledAsync(job.Id);
                break;
        }
    }

    private async Task CleanUpIfCancelledAsync(string jobId)
    {
        if (await jobs.GetAsync(jobId, CancellationToken.None) is { Status: JobStatus.Cancelled })
        {
            await checkpoints.DeleteEverythingAsync(jobId);
        }
    }

    private async Task FailAsync(FineTuneJob job, string code, string message)
    {
        if (await lifecycle.FailedAsync(job.Id, WorkerId, code, message) is not null)
        {
            // A failed job never resumes.
            await checkpoints.DiscardAsync(job.Id);
        }
    }
}
