namespace LLMTune.Engine.Training;

/// <summary>Reported after every optimiser step; the step that closes an epoch also carries the eval loss.</summary>
public sealed record TrainingProgress
{
    /// <summary>Steps completed so far (1 after the first step; carries on from a resumed checkpoint).</summary>
    public required int Step { get; init; }

    public required int TotalSteps { get; init; }

    /// <summary>1-based epoch this step belongs to.</summary>
    public required int Epoch { get; init; }

    public required int TotalEpochs { get; init; }

    /// <summary>Mean cross-entropy over this step's trained (completion) tokens.</summary>
    public required float Loss { get; init; }

    public required float LearningRate { get; init; }

    /// <summary>Training throughput of this run so far (tokens of the packed rows, padding excluded).</summary>
    public required double TokensPerSecond { get; init; }

    /// <summary>Mean loss over the held-out examples, set on the last step of each epoch (and of the run).</summary>
    public float? EvalLoss { get; init; }

    /// <summary>The checkpoint written at this step, when one was (copy it to shared storage to resume on another machine).</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>The result as it stands at this step, written because its eval loss is the best so far (see <see cref="TrainingOptions.SnapshotDirectory"/>).</summary>
    public string? SnapshotPath { get; init; }

    /// <summary>This is the last step: the eval loss stopped improving (see <see cref="TrainingOptions.EarlyStoppingPatience"/>).</summary>
    public bool StoppedEarly { get; init; }

    public double Percent => TotalSteps == 0 ? 100 : 100.0 * Step / TotalSteps;
}

/// <summary>What a finished run produced.</summary>
public sealed record TrainingResult
{
    public required string OutputPath { get; init; }

    public required TrainingMode Mode { get; init; }

    /// <summary>Total steps, counting those done before a resume.</summary>
    public required int Steps { get; init; }

    public required int Epochs { get; init; }

    /// <summary>0 for a fresh run, otherwise the checkpoint step it resumed from.</summary>
    public required int ResumedFromStep { get; init; }

    public required float FinalTrainLoss { get; init; }

    /// <summary>Eval loss before the first step of this run (null without eval data).</summary>
    public float? InitialEvalLoss { get; init; }

    /// <summary>Eval loss after the last step (null without eval data).</summary>
    public float? FinalEvalLoss { get; init; }

    /// <summary>The step whose weights the output holds: the best evaluation's with <see cref="TrainingOptions.OutputBestEvaluation"/>, otherwise the last.</summary>
    public required int OutputStep { get; init; }

    /// <summary>Eval loss of the weights in the output (null without eval data).</summary>
    public float? OutputEvalLoss { get; init; }

    /// <summary>The run ended before its last planned step because the eval loss stopped improving.</summary>
    public bool StoppedEarly { get; init; }

    /// <summary>Eval loss at the end of each epoch completed in this run.</summary>
    public required IReadOnlyList<float> EpochEvalLosses { get; init; }

    public required long TrainableParameters { get; init; }

    public required long TrainedTokens { get; init; }

    public required double TokensPerSecond { get; init; }

    public required TimeSpan Duration { get; init; }
}
