using System.Globalization;
using LLMTune.Engine.Training;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Finetune.Features.BaseModels;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Artifacts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Training;

/// <summary>What validation hands to training: the job as recorded, its base model, and its prepared data.</summary>
public sealed record ValidatedJob(FineTuneJob Job, TrainableBaseModel BaseModel, PreparedDataset Data);

/// <summary>
/// The steps of one claimed job, in order: validate (the base model and the dataset, and the base's eval loss),
/// train (through <see cref="ITrainingRunner"/>, recording progress), complete (store the result, record and
/// announce it, clean up). Failures surface as exceptions; the worker decides what they mean for the job.
/// </summary>
public sealed class JobExecution(
    JobStore jobs,
    JobLifecycle lifecycle,
    JobCheckpoints checkpoints,
    BaseModelCatalog baseModels,
    DatasetPreparer preparer,
    ITrainingRunner runner,
    IArtifactStore artifacts,
    TimeProvider time,
    IOptions<FinetuneOptions> options,
    ILogger<JobExecution> logger)
{
    public async Task RunAsync(FineTuneJob claimed, string workerId, CancellationToken ct)
    {
        var validated = await ValidateAsync(claimed, workerId, ct);
        var (job, result) = await TrainAsync(validated, workerId, ct);
        await CompleteAsync(job, result, workerId, ct);
    }

    private async Task<ValidatedJob> ValidateAsync(FineTuneJob claimed, string workerId, CancellationToken ct)
    {
        var settings = options.Value;
        var resumed = claimed.Attempts > 1;
        var job = await jobs.UpdateAsync(claimed.Id, j => j.LeaseOwner == workerId && !j.IsFinished, j => j.Status = JobStatus.Validating, ct)
            ?? throw new LeaseLostException();
        await jobs.AddEventAsync(job, "status", resumed
            ? $"Picked up again by a worker (attempt {job.Attempts}); validating the dataset."
            : "Validating the dataset.", e => e.Status = "validating", ct);

        var baseModel = baseModels.Find(job.BaseModel)
            ?? throw new DatasetException("model_not_found", $"The base model '{job.BaseModel}' is no longer configured on this server.");
        if (!File.Exists(baseModel.Path))
        {
            throw new DatasetException("model_not_found", $"The base model '{job.BaseModel}' has no file on this server.");
        }

        var data = await preparer.PrepareAsync(job, baseModel.Path, ct);
        await jobs.AddEventAsync(job, "status",
            string.Create(CultureInfo.InvariantCulture, $"Dataset valid: {data.Lines} examples, {data.Train.Count} for training, {data.Eval.Count} held out."),
            null, ct);

        job = await RecordHyperparametersAsync(job, data, workerId, ct);

        if (job.BaselineEvalLoss is null && settings.Training.BaselineEvaluation && data.Eval.Count > 0)
        {
            var threads = Threads(settings);
            var baseline = await Task.Run(() => BaselineEvaluator.Evaluate(baseModel.Path, data.Eval.Take(64).ToList(), settings.Training.SequenceLength, threads, ct), ct);
            if (double.IsFinite(baseline))
            {
                job = await jobs.UpdateOwnedAsync(job.Id, workerId, j =>
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

        return new ValidatedJob(job, baseModel, data);
    }

    /// <summary>Chooses the automatic values (once: a resumed job keeps them), records them, and warns when too few steps will run.</summary>
    private async Task<FineTuneJob> RecordHyperparametersAsync(FineTuneJob job, PreparedDataset data, string workerId, CancellationToken ct)
    {
        var settings = options.Value;
        var plan = HyperparameterPlanner.Plan(job, data.Train, settings);
        if (!job.HyperparametersResolved)
        {
            job = await jobs.UpdateOwnedAsync(job.Id, workerId, j =>
            {
                j.LearningRate = plan.LearningRate;
                j.Epochs = plan.Epochs;
                j.BatchSize = plan.BatchSize;
                j.HyperparametersResolved = true;
            }, ct) ?? throw new LeaseLostException();
        }

        string Shown(string name, object value) => string.Create(CultureInfo.InvariantCulture, $"{name} {value}{(plan.Auto.Contains(name) ? " (auto)" : "")}");
        if (job.Attempts == 1)
        {
            await jobs.AddEventAsync(job, "hyperparameters", string.Create(CultureInfo.InvariantCulture,
                $"Training with {Shown(FineTuneJob.LearningRateName, plan.LearningRate)}, {Shown(FineTuneJob.EpochsName, plan.Epochs)}, {Shown(FineTuneJob.BatchSizeName, plan.BatchSize)}: {plan.StepsPerEpoch} optimizer steps per epoch, {plan.TotalSteps} in all{(job.EarlyStoppingPatience > 0 ? $", stopping early after {job.EarlyStoppingPatience} epochs without a lower eval loss" : "")}."),
                null, ct);
            if (plan.TotalSteps < settings.Auto.WarnBelowSteps)
            {
                await jobs.AddEventAsync(job, "warning", string.Create(CultureInfo.InvariantCulture,
                    $"Only {plan.TotalSteps} optimizer steps ({plan.Epochs} epochs of {plan.StepsPerEpoch}): probably too few to learn this dataset (fewer than {settings.Auto.WarnBelowSteps}). Omit the hyperparameters or set them to \"auto\" to let the service choose."),
                    null, ct);
            }
        }

        return job;
    }

    private async Task<(FineTuneJob Job, TrainingRunResult Result)> TrainAsync(ValidatedJob validated, string workerId, CancellationToken ct)
    {
        var job = await lifecycle.TrainingAsync(validated.Job, workerId, ct);
        await checkpoints.RestoreAsync(job.Id, ct);
        var request = new TrainingRunRequest(job.Id, TrainingOptionsFor(job, validated.BaseModel), validated.Data.Train, validated.Data.Eval);

        var recorder = new ProgressRecorder(lifecycle, checkpoints, time, logger, workerId, job, options.Value.Worker.ProgressInterval);
        var recording = recorder.RunAsync(ct);
        try
        {
            return (job, await runner.RunAsync(request, recorder, ct));
        }
        finally
        {
            recorder.Complete();
            await recording;
        }
    }

    private async Task CompleteAsync(FineTuneJob job, TrainingRunResult result, string workerId, CancellationToken ct)
    {
        var lora = result.Mode == TrainingMode.Lora;
        // Each attempt writes its own result, so a worker that lost the job without noticing cannot replace the
        // result of the attempt that completed it.
        var outputKey = ArtifactKeys.Output(job.Id, job.Attempts, lora);
        await using (var output = File.OpenRead(result.OutputPath))
        {
            await artifacts.SaveAsync(outputKey, output, long.MaxValue, ct);
        }

        // The best evaluation's weights deploy: this run's (the trainer wrote them as the result), or those of a
        // checkpoint of an earlier attempt when that one was better (a resumed run tracks its best afresh).
        var recorded = await jobs.CheckpointsOfAsync(job.Id, ct);
        var earlierBest = recorded.Where(c => c.Attempt < job.Attempts).MinBy(c => c.EvalLoss);
        var deployed = earlierBest is not null && (result.OutputEvalLoss is null || earlierBest.EvalLoss < result.OutputEvalLoss)
            ? earlierBest
            : recorded.FirstOrDefault(c => c.Attempt == job.Attempts && c.Step == result.OutputStep);
        var fromEarlier = deployed is not null && deployed == earlierBest;
        var outcome = new CompletedTraining(
            fromEarlier ? artifacts.LocationOf(deployed!.ArtifactKey) : artifacts.LocationOf(outputKey),
            lora ? "lora" : "full",
            result.FinalEvalLoss,
            fromEarlier ? deployed!.Step : result.OutputStep,
            fromEarlier ? deployed!.EvalLoss : result.OutputEvalLoss,
            deployed?.Id,
            result.StoppedEarly,
            result.TrainedTokens,
            string.Create(CultureInfo.InvariantCulture,
                $"Training completed: {result.Steps} steps{(result.ResumedFromStep > 0 ? $" (resumed from step {result.ResumedFromStep})" : "")}{(result.StoppedEarly ? " (stopped early: the eval loss stopped improving)" : "")}, eval loss {FormatLoss(result.InitialEvalLoss)} -> {FormatLoss(result.FinalEvalLoss)}, {result.TokensPerSecond:F0} tokens/s. Deploying step {(fromEarlier ? deployed!.Step : result.OutputStep)} (eval loss {FormatLoss(fromEarlier ? deployed!.EvalLoss : result.OutputEvalLoss)})."));
        // Null: cancelled (or reclaimed) while the result was being written; it must not be deployed.
        _ = await lifecycle.CompletedAsync(job.Id, workerId, outcome) ?? throw new LeaseLostException();
        logger.LogInformation("Fine-tune job {JobId} completed: {Steps} steps (resumed from {ResumedFrom}), {TokensPerSecond:F0} tokens/s", job.Id, result.Steps, result.ResumedFromStep, result.TokensPerSecond);

        // Last: the job's history and announcement come first, clean-up can wait.
        await checkpoints.DiscardAsync(job.Id);
        checkpoints.DeleteScratch(job.Id);
    }

    /// <summary>The one hand-over from a job to the trainer: the job's choices, the service's settings and this worker's folders.</summary>
    private TrainingOptions TrainingOptionsFor(FineTuneJob job, TrainableBaseModel baseModel)
    {
        var settings = options.Value;
        var mode = job.Adapter == FineTuneJob.FullAdapter ? TrainingMode.Full : TrainingMode.Lora;
        return new TrainingOptions
        {
            BaseModelPath = baseModel.Path,
            OutputPath = Path.Combine(checkpoints.JobDirectory(job.Id), mode == TrainingMode.Lora ? "adapter.gguf" : "model.gguf"),
            Mode = mode,
            Lora = new LoraOptions { Rank = job.LoraRank ?? settings.Training.LoraRank, Alpha = settings.Training.LoraAlpha },
            LearningRate = (float)job.LearningRate,
            Epochs = job.Epochs,
            BatchSize = job.BatchSize,
            SequenceLength = settings.Training.SequenceLength,
            Threads = Threads(settings),
            Seed = DatasetPreparer.StableSeed(job.Id),
            CheckpointDirectory = checkpoints.CheckpointDirectory(job.Id),
            CheckpointInterval = settings.Training.CheckpointInterval,
            EarlyStoppingPatience = job.EarlyStoppingPatience > 0 ? job.EarlyStoppingPatience : null,
            OutputBestEvaluation = true,
            SnapshotDirectory = Path.Combine(checkpoints.JobDirectory(job.Id), "snapshots"),
            ResumeFromCheckpoint = true,
            // The worker decides what a cancellation means: a shutdown keeps the checkpoint, a user cancel deletes the job's folder.
            KeepCheckpointsOnCancel = true,
            ModelName = $"{job.BaseModel} fine-tune {job.Id}",
        };
    }

    private static int Threads(FinetuneOptions settings) => settings.Training.Threads ?? Math.Max(1, Environment.ProcessorCount / settings.Worker.Concurrency);

    private static string FormatLoss(double? loss) => loss is { } l ? l.ToString("F4", CultureInfo.InvariantCulture) : "n/a";
}
