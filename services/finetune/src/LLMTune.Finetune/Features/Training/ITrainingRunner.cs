using LLMTune.Engine.Training;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// One training run, prepared by the worker: the engine's own <see cref="TrainingOptions"/> (resolved once from the
/// job and the service's settings) and the tokenized data. A runner may train in this process (the default) or hand
/// the run to other machines (e.g. a Kubernetes GPU job that reads the options from a spec file, trains, and writes
/// the output and checkpoints to shared storage): the worker, the lease and the job document stay the same.
/// </summary>
public sealed record TrainingRunRequest(string JobId, TrainingOptions Options, IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample> Eval);

/// <summary>Progress of a run, as the worker records it on the job.</summary>
/// <remarks><see cref="CheckpointPath"/> names the checkpoint written at this step, if any; the worker mirrors it to the artifact store.
/// <see cref="SnapshotPath"/> names the result as it stood at this step (a new best eval loss); the worker keeps it as a downloadable checkpoint.</remarks>
public sealed record TrainingRunProgress(int Step, int TotalSteps, int Epoch, int TotalEpochs, double Loss, double? EvalLoss, double TokensPerSecond, string? CheckpointPath = null, string? SnapshotPath = null, bool StoppedEarly = false)
{
    public double Percent => TotalSteps == 0 ? 100 : 100.0 * Step / TotalSteps;
}

/// <summary>What a run produced; the output holds the weights of <see cref="OutputStep"/> (the best evaluation's, when there was eval data).</summary>
public sealed record TrainingRunResult(
    string OutputPath, TrainingMode Mode, int Steps, int ResumedFromStep, double? InitialEvalLoss, double? FinalEvalLoss, double TokensPerSecond,
    int OutputStep, double? OutputEvalLoss, bool StoppedEarly, long TrainedTokens);

/// <summary>Runs one training run to completion; cancelling <c>ct</c> stops it within a step, keeping its checkpoints.</summary>
public interface ITrainingRunner
{
    Task<TrainingRunResult> RunAsync(TrainingRunRequest request, IProgress<TrainingRunProgress> progress, CancellationToken ct);
}
