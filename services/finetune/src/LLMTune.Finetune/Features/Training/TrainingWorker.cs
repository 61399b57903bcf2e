using System.Globalization;
using System.Threading.Channels;
using Amazon.Runtime;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Artifacts;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// Claims jobs from the store (fairly, with a lease), runs validation and training through <see cref="ITrainingRunner"/>,
/// records progress on the job and announces the lifecycle on the bus. A job whose worker died is claimed again once
/// its lease expires and resumes from its last checkpoint; on a graceful stop running jobs go back to the queue.
/// </summary>
public sealed class TrainingWorker(
    JobStore jobs,
    JobRuntime runtime,
    DatasetPreparer preparer,
    ITrainingRunner runner,
    IArtifactStore artifacts,
    IBus bus,
    TimeProvider time,
    IOptions<FinetuneOptions> options,
    ILogger<TrainingWorker> logger) : BackgroundService
{
    /// <summary>Unique per process start, so a restarted process never mistakes an old lease for its own.</summary>
    public string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}";

    private FinetuneOptions Settings => options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var worker = Settings.Worker;
        using var slots = new SemaphoreSlim(worker.Concurrency, worker.Concurrency);
        var running = new List<Task>();
        logger.LogInformation("Fine-tune worker {WorkerId} started with {Concurrency} slot(s)", WorkerId, worker.Concurrency);
        try
        {
            await AnnounceUnannouncedCompletionsAsync(stoppingToken);
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
        var renewing = RenewLeaseAsync(job.Id, handle, renewal.Token);
        try
        {
            await ExecuteJobAsync(job, cancellation.Token);
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

    private async Task ExecuteJobAsync(FineTuneJob claimed, CancellationToken ct)
    {
        var settings = Settings;
        var resumed = claimed.Attempts > 1;
        var job = await jobs.UpdateAsync(claimed.Id, j => j.LeaseOwner == WorkerId && !j.IsFinished, j => j.Status = JobStatus.Validating, ct)
            ?? throw new LeaseLostException();
        await jobs.AddEventAsync(job, "status", resumed
            ? $"Picked up again by a worker (attempt {job.Attempts}); validating the dataset."
            : "Validating the dataset.", e => e.Status = "validating", ct);

        var baseModelPath = settings.ResolveBaseModelPath(job.BaseModel)
            ?? throw new DatasetException("model_not_found", $"The base model '{job.BaseModel}' is no longer configured on this server.");
        if (!File.Exists(baseModelPath))
        {
            throw new DatasetException("model_not_found", $"The base model '{job.BaseModel}' has no file on this server.");
        }

        var data = await preparer.PrepareAsync(job, baseModelPath, ct);
        await jobs.AddEventAsync(job, "status",
            string.Create(CultureInfo.InvariantCulture, $"Dataset valid: {data.Lines} examples, {data.Train.Count} for training, {data.Eval.Count} held out."),
            null, ct);

        var threads = settings.Training.Threads ?? Math.Max(1, Environment.ProcessorCount / settings.Worker.Concurrency);
        if (job.BaselineEvalLoss is null && settings.Training.BaselineEvaluation && data.Eval.Count > 0)
        {
            var baseline = await Task.Run(() => BaselineEvaluator.Evaluate(baseModelPath, data.Eval.Take(64).ToList(), settings.Training.SequenceLength, threads, ct), ct);
            if (double.IsFinite(baseline))
            {
                job = await jobs.UpdateOwnedAsync(job.Id, WorkerId, j =>
                {
                    j.BaselineEvalLoss = baseline;
                    j.EvalLoss = baseline;
                }, ct) ?? throw new LeaseLostException();
                await jobs.AddEventAsync(job, "evaluation", string.Create(CultureInfo.InvariantCulture, $"Eval loss of the base model before training: {baseline:F4}."), e =>
                {
                    e.Step = 0;
                    e.Epoch = 0;
                    e.Progress = 0;
                    e.EvalLoss = baseline;
                }, ct);
            }
        }

        job = await jobs.UpdateOwnedAsync(job.Id, WorkerId, j =>
        {
            j.Status = JobStatus.Training;
            j.StartedAt ??= jobs.Now;
        }, ct) ?? throw new LeaseLostException();
        await jobs.AddEventAsync(job, "status", job.Step > 0 ? $"Training resumes (last recorded step {job.Step})." : "Training started.", e => e.Status = "training", ct);
        if (!job.StartedAnnounced)
        {
            await bus.Publish(new TrainingStarted(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel, job.Epochs, job.WebhookUrl), ct);
            job = await jobs.UpdateOwnedAsync(job.Id, WorkerId, j => j.StartedAnnounced = true, ct) ?? throw new LeaseLostException();
        }

        var directory = JobDirectory(job.Id);
        var checkpointDirectory = Path.Combine(directory, "checkpoints");
        await RestoreCheckpointAsync(job.Id, checkpointDirectory, ct);
        var mode = job.Adapter == FineTuneJob.FullAdapter ? Engine.Training.TrainingMode.Full : Engine.Training.TrainingMode.Lora;
        var request = new TrainingRunRequest
        {
            JobId = job.Id,
            BaseModel = job.BaseModel,
            BaseModelPath = baseModelPath,
            Train = data.Train,
            Eval = data.Eval,
            LearningRate = (float)job.LearningRate,
            Epochs = job.Epochs,
            BatchSize = job.BatchSize,
            SequenceLength = settings.Training.SequenceLength,
            Mode = mode,
            LoraRank = job.LoraRank ?? settings.Training.LoraRank,
            LoraAlpha = settings.Training.LoraAlpha,
            Threads = threads,
            Seed = DatasetPreparer.StableSeed(job.Id),
            CheckpointDirectory = checkpointDirectory,
            CheckpointInterval = settings.Training.CheckpointInterval,
            OutputPath = Path.Combine(directory, mode == Engine.Training.TrainingMode.Lora ? "adapter.gguf" : "model.gguf"),
        };

        var recorder = new ProgressRecorder(jobs, artifacts, bus, time, logger, WorkerId, job, settings.Worker.ProgressInterval);
        var recording = recorder.RunAsync(ct);
        TrainingRunResult result;
        try
        {
            result = await runner.RunAsync(request, recorder, ct);
        }
        finally
        {
            recorder.Complete();
            await recording;
        }

        var lora = result.Mode == Engine.Training.TrainingMode.Lora;
        // Each attempt writes its own result, so a worker that lost the job without noticing cannot replace the
        // result of the attempt that completed it.
        var outputKey = ArtifactKeys.Output(job.Id, job.Attempts, lora);
        await using (var output = File.OpenRead(result.OutputPath))
        {
            await artifacts.SaveAsync(outputKey, output, long.MaxValue, ct);
        }

        var completed = await jobs.UpdateOwnedAsync(job.Id, WorkerId, j =>
        {
            j.Status = JobStatus.Completed;
            j.Progress = 100;
            j.FinishedAt = jobs.Now;
            j.ArtifactLocation = artifacts.LocationOf(outputKey);
            j.ArtifactKind = lora ? "lora" : "full";
            j.EvalLoss = result.FinalEvalLoss ?? j.EvalLoss;
            j.LeaseOwner = null;
            j.LeaseExpiresAt = null;
        }, CancellationToken.None);
        if (completed is null)
        {
            // Cancelled (or reclaimed) while the result was being written: it must not be deployed.
            throw new LeaseLostException();
        }

        await jobs.AddEventAsync(completed, "status", string.Create(CultureInfo.InvariantCulture,
            $"Training completed: {result.Steps} steps{(result.ResumedFromStep > 0 ? $" (resumed from step {result.ResumedFromStep})" : "")}, eval loss {FormatLoss(result.InitialEvalLoss)} -> {FormatLoss(result.FinalEvalLoss)}, {result.TokensPerSecond:F0} tokens/s."),
            e => e.Status = "completed", CancellationToken.None);
        logger.LogInformation("Fine-tune job {JobId} completed: {Steps} steps (resumed from {ResumedFrom}), {TokensPerSecond:F0} tokens/s", job.Id, result.Steps, result.ResumedFromStep, result.TokensPerSecond);
        await AnnounceCompletionAsync(completed, CancellationToken.None);

        // Last: the job's history and announcement come first, clean-up can wait.
        await DiscardCheckpointsAsync(job.Id);
        DeleteDirectory(directory);
    }

    private static string FormatLoss(double? loss) => loss is { } l ? l.ToString("F4", CultureInfo.InvariantCulture) : "n/a";

    private async Task AnnounceCompletionAsync(FineTuneJob job, CancellationToken ct)
    {
        await bus.Publish(new TrainingCompleted(job.WorkspaceId, job.Id, time.GetUtcNow(), job.Id, job.BaseModel, job.ArtifactLocation!, job.ArtifactKind!, job.WebhookUrl), ct);
        await jobs.MarkCompletionAnnouncedAsync(job.Id, ct);
    }

    /// <summary>A completion recorded but never announced (the process died in between) is announced on start.</summary>
    private async Task AnnounceUnannouncedCompletionsAsync(CancellationToken ct)
    {
        foreach (var job in await jobs.UnannouncedCompletionsAsync(ct))
        {
            await AnnounceCompletionAsync(job, ct);
        }
    }

    private async Task OnStoppedAsync(FineTuneJob job, StopReason reason)
    {
        switch (reason)
        {
            case StopReason.Shutdown:
                // Back to the queue at once (no need to wait for the lease): the next start resumes from the checkpoint.
                if (await jobs.UpdateOwnedAsync(job.Id, WorkerId, j =>
                    {
                        j.Status = JobStatus.Queued;
                        j.LeaseOwner = null;
                        j.LeaseExpiresAt = null;
                    }, CancellationToken.None) is { } requeued)
                {
                    await jobs.AddEventAsync(requeued, "status", "The service is stopping; the job is queued again and resumes from its last checkpoint.", e => e.Status = "queued", CancellationToken.None);
                }

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
            await artifacts.DeleteAsync(ArtifactKeys.JobPrefix(jobId), CancellationToken.None);
            DeleteDirectory(JobDirectory(jobId));
        }
    }

    private async Task FailAsync(FineTuneJob job, string code, string message)
    {
        var failed = await jobs.UpdateAsync(job.Id, j => j.LeaseOwner == WorkerId && !j.IsFinished, j =>
        {
            j.Status = JobStatus.Failed;
            j.ErrorCode = code;
            j.ErrorMessage = message;
            j.FinishedAt = jobs.Now;
            j.LeaseOwner = null;
            j.LeaseExpiresAt = null;
        }, CancellationToken.None);
        if (failed is null)
        {
            return;
        }

        logger.LogWarning("Fine-tune job {JobId} failed: {Code} {Message}", job.Id, code, message);
        await jobs.AddEventAsync(failed, "status", message, e => e.Status = "failed", CancellationToken.None);
        await DiscardCheckpointsAsync(job.Id);
        await bus.Publish(new TrainingFailed(failed.WorkspaceId, failed.Id, time.GetUtcNow(), failed.Id, failed.BaseModel, code, message, failed.WebhookUrl), CancellationToken.None);
    }

    /// <summary>Renews the lease while the job runs; losing it (cancelled elsewhere, or reclaimed) stops the run.</summary>
    private async Task RenewLeaseAsync(string jobId, RunningJob handle, CancellationToken ct)
    {
        var lease = Settings.Worker.LeaseDuration;
        using var timer = new PeriodicTimer(lease / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                FineTuneJob? renewed;
                try
                {
                    renewed = await jobs.UpdateAsync(jobId, j => j.LeaseOwner == WorkerId && !j.IsFinished, j => j.LeaseExpiresAt = jobs.Now + lease, ct);
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

    internal string JobDirectory(string jobId) => Path.Combine(Path.GetFullPath(Settings.WorkPath), "jobs", jobId);

    /// <summary>
    /// A job that trained before (here, on another machine, or on a wiped disk) resumes from the checkpoint mirrored to
    /// the artifact store; without one, from a checkpoint on this disk if there is one.
    /// </summary>
    private async Task RestoreCheckpointAsync(string jobId, string checkpointDirectory, CancellationToken ct)
    {
        // The stored copy wins: every checkpoint is mirrored as soon as it is written, so it is the newest one of
        // whichever worker ran last, while a copy on this disk may be from an earlier attempt here.
        var local = Engine.Training.LlamaTrainer.CheckpointPath(checkpointDirectory);
        await using var mirrored = await artifacts.OpenReadAsync(ArtifactKeys.Checkpoint(jobId), ct);
        if (mirrored is not null)
        {
            await LimitedCopy.WriteFileAtomicallyAsync(local, mirrored, long.MaxValue, ct);
            logger.LogInformation("Restored the checkpoint of job {JobId} from the artifact store", jobId);
        }
    }

    /// <summary>Removes the job's checkpoints here and in the store (a failed or finished job never resumes).</summary>
    private async Task DiscardCheckpointsAsync(string jobId)
    {
        DeleteDirectory(Path.Combine(JobDirectory(jobId), "checkpoints"));
        try
        {
            await artifacts.DeleteAsync(ArtifactKeys.Checkpoint(jobId), CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not delete the mirrored checkpoint of job {JobId}", jobId);
        }
    }

    private static void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    private sealed class LeaseLostException() : Exception("The job is no longer owned by this worker.");

    /// <summary>
    /// Takes the trainer's per-step reports (on the training thread, without blocking it) and writes them to the job:
    /// at most every <c>interval</c>, and at once for eval results and the last step.
    /// </summary>
    private sealed class ProgressRecorder(JobStore jobs, IArtifactStore artifacts, IBus bus, TimeProvider time, ILogger logger, string workerId, FineTuneJob job, TimeSpan interval)
        : IProgress<TrainingRunProgress>
    {
        private readonly Channel<TrainingRunProgress> _reports = Channel.CreateUnbounded<TrainingRunProgress>(new UnboundedChannelOptions { SingleReader = true });

        public void Report(TrainingRunProgress value) => _reports.Writer.TryWrite(value);

        public void Complete() => _reports.Writer.TryComplete();

        public async Task RunAsync(CancellationToken ct)
        {
            var lastWrite = DateTime.MinValue;
            TrainingRunProgress? pending = null;
            try
            {
                while (await _reports.Reader.WaitToReadAsync(CancellationToken.None))
                {
                    string? checkpoint = null;
                    while (_reports.Reader.TryRead(out var report))
                    {
                        checkpoint = report.CheckpointPath ?? checkpoint;
                        pending = report;
                        var now = jobs.Now;
                        if (report.EvalLoss is not null || report.Step == report.TotalSteps || now - lastWrite >= interval)
                        {
                            await WriteAsync(report, ct);
                            pending = null;
                            lastWrite = now;
                        }
                    }

                    if (checkpoint is not null)
                    {
                        // Only the newest: the file is replaced at every checkpoint, so older reports name the same file.
                        await MirrorCheckpointAsync(checkpoint, ct);
                    }
                }

                if (pending is not null && !ct.IsCancellationRequested)
                {
                    await WriteAsync(pending, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // the run is stopping; nothing more to record
            }
            catch (Exception e)
            {
                // Progress is informative: a failed write must not fail the training.
                logger.LogWarning(e, "Recording progress of job {JobId} failed", job.Id);
            }
        }

        private async Task MirrorCheckpointAsync(string path, CancellationToken ct)
        {
            try
            {
                // A worker that lost the job must not replace the checkpoint of the one that has it now.
                if (await jobs.GetAsync(job.Id, ct) is not { } current || current.LeaseOwner != workerId)
                {
                    return;
                }

                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                await artifacts.SaveAsync(ArtifactKeys.Checkpoint(job.Id), file, long.MaxValue, ct);
            }
            catch (FileNotFoundException)
            {
                // the run finished and removed it: nothing left to resume from
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The local checkpoint still serves a resume on this machine.
                logger.LogWarning(e, "Mirroring the checkpoint of job {JobId} to the artifact store failed", job.Id);
            }
        }

        private async Task WriteAsync(TrainingRunProgress p, CancellationToken ct)
        {
            var updated = await jobs.UpdateOwnedAsync(job.Id, workerId, j =>
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
                return;
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
        }
    }
}
