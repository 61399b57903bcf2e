using LLMTune.Engine.Training;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// Everything one training run needs, prepared by the worker. A runner may train in this process (the default) or
/// hand the run to other machines (e.g. a Kubernetes GPU job that reads the same fields from a spec file, trains,
/// and writes <see cref="OutputPath"/> and checkpoints to shared storage): the worker, the lease and the job
/// document stay the same.
/// </summary>
public sealed record TrainingRunRequest
{
    public required string JobId { get; init; }
    public required string BaseModel { get; init; }
    public required string BaseModelPath { get; init; }
    public required IReadOnlyList<TrainingExample> Train { get; init; }
    public required IReadOnlyList<TrainingExample> Eval { get; init; }
    public required float LearningRate { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required int SequenceLength { get; init; }
    public required TrainingMode Mode { get; init; }
    public required int LoraRank { get; init; }
    public required float LoraAlpha { get; init; }
    public required int Threads { get; init; }
    public required int Seed { get; init; }

    /// <summary>Checkpoints go here; a run finding one resumes from it.</summary>
    public required string CheckpointDirectory { get; init; }
    public required int CheckpointInterval { get; init; }

    /// <summary>The GGUF the run produces (a LoRA adapter or a full model), written atomically.</summary>
    public required string OutputPath { get; init; }
}

/// <summary>Progress of a run, as the worker records it on the job.</summary>
/// <remarks><see cref="CheckpointPath"/> names the checkpoint written at this step, if any; the worker mirrors it to the artifact store.</remarks>
public sealed record TrainingRunProgress(int Step, int TotalSteps, int Epoch, int TotalEpochs, double Loss, double? EvalLoss, double TokensPerSecond, string? CheckpointPath = null)
{
    public double Percent => TotalSteps == 0 ? 100 : 100.0 * Step / TotalSteps;
}

public sealed record TrainingRunResult(string OutputPath, TrainingMode Mode, int Steps, int ResumedFromStep, double? InitialEvalLoss, double? FinalEvalLoss, double TokensPerSecond);

/// <summary>Runs one training run to completion; cancelling <c>ct</c> stops it within a step, keeping its checkpoints.</summary>
public interface ITrainingRunner
{
    Task<TrainingRunResult> RunAsync(TrainingRunRequest request, IProgress<TrainingRunProgress> progress, CancellationToken ct);
}
