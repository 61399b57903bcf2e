using LLMTune.Engine.Training;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Features.Training;

/// <summary>Trains on this machine's CPU with the engine's <see cref="LlamaTrainer"/>.</summary>
public sealed class InProcessTrainingRunner(ILogger<InProcessTrainingRunner> logger) : ITrainingRunner
{
    public async Task<TrainingRunResult> RunAsync(TrainingRunRequest request, IProgress<TrainingRunProgress> progress, CancellationToken ct)
    {
        var options = request.Options;
        var reporter = new Reporter(progress);
        TrainingResult result;
        try
        {
            result = await new LlamaTrainer().TrainAsync(options, request.Train, request.Eval, reporter, ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("belongs to a different run", StringComparison.Ordinal) && !ct.IsCancellationRequested)
        {
            // A checkpoint from an older attempt that no longer matches (e.g. settings changed): start over.
            logger.LogWarning("Discarding a checkpoint of job {JobId} that does not match this run", request.JobId);
            Directory.Delete(options.CheckpointDirectory!, recursive: true);
            result = await new LlamaTrainer().TrainAsync(options, request.Train, request.Eval, reporter, ct).ConfigureAwait(false);
        }

        return new TrainingRunResult(result.OutputPath, result.Mode, result.Steps, result.ResumedFromStep, result.InitialEvalLoss, result.FinalEvalLoss, result.TokensPerSecond,
            result.OutputStep, result.OutputEvalLoss, result.StoppedEarly, result.TrainedTokens);
    }

    /// <summary>Forwards the trainer's reports synchronously (the worker throttles what it writes).</summary>
    private sealed class Reporter(IProgress<TrainingRunProgress> target) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) =>
            target.Report(new TrainingRunProgress(value.Step, value.TotalSteps, value.Epoch, value.TotalEpochs, value.Loss, value.EvalLoss, value.TokensPerSecond, value.CheckpointPath,
                value.SnapshotPath, value.StoppedEarly));
    }
}
