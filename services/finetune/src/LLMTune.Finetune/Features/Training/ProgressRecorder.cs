using System.Threading.Channels;
using LLMTune.Finetune.Features.Jobs;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// Takes the trainer's per-step reports (on the training thread, without blocking it) and records them on the job:
/// at most every <c>interval</c>, and at once for eval results and the last step. Checkpoints named in the reports
/// are mirrored to the artifact store.
/// </summary>
public sealed class ProgressRecorder(JobLifecycle lifecycle, JobCheckpoints checkpoints, TimeProvider time, ILogger logger, string workerId, FineTuneJob job, TimeSpan interval)
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
                    var now = time.GetUtcNow().UtcDateTime;
                    if (report.EvalLoss is not null || report.Step == report.TotalSteps || now - lastWrite >= interval)
                    {
                        await lifecycle.ProgressedAsync(job.Id, workerId, report, ct);
                        pending = null;
                        lastWrite = now;
                    }

                    if (report.SnapshotPath is not null)
                    {
                        // Every one: each is its own file (a step with a new best eval loss).
                        await checkpoints.KeepSnapshotAsync(job, workerId, report, ct);
                    }
                }

                if (checkpoint is not null)
                {
                    // Only the newest: the file is replaced at every checkpoint, so older reports name the same file.
                    await checkpoints.MirrorAsync(job.Id, workerId, checkpoint, ct);
                }
            }

            if (pending is not null && !ct.IsCancellationRequested)
            {
                await lifecycle.ProgressedAsync(job.Id, workerId, pending, ct);
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
}
