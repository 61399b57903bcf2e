using LLMTune.Engine.Training;
using LLMTune.Finetune.Features.Jobs;

namespace LLMTune.Finetune.Features.Training;

/// <summary>The values a job trains with and what they amount to.</summary>
public sealed record PlannedHyperparameters(double LearningRate, int Epochs, int BatchSize, int StepsPerEpoch, IReadOnlyList<string> Auto)
{
    public int TotalSteps => StepsPerEpoch * Epochs;
}

/// <summary>
/// Chooses the hyperparameters a job left to the service, once its data is known, so that a small dataset is
/// actually learned: a batch that is a share of the packed rows, epochs like OpenAI's <c>n_epochs: auto</c> (3, fewer
/// for very large datasets) raised to reach a minimum number of optimiser steps, and a learning rate for the
/// adapter (LoRA's scaled inversely with alpha/rank, both with the square root of the batch size). Explicit values
/// are kept exactly.
/// </summary>
public static class HyperparameterPlanner
{
    /// <summary>OpenAI's ceiling on examples seen when it chooses epochs (n_epochs auto).</summary>
    private const int MaxTargetExamples = 25_000;

    private const int DefaultEpochs = 3;
    private const int ReferenceBatchSize = 8;
    private const float ReferenceLoraScale = 2f;

    public static PlannedHyperparameters Plan(FineTuneJob job, IReadOnlyList<TrainingExample> train, FinetuneOptions settings)
    {
        var auto = settings.Auto;
        var sequenceLength = settings.Training.SequenceLength;
        var isAuto = job.HyperparametersResolved ? [] : job.AutoHyperparameters.ToHashSet(StringComparer.Ordinal);

        var batchSize = job.BatchSize;
        if (isAuto.Contains(FineTuneJob.BatchSizeName))
        {
            var rows = LlamaTrainer.StepsPerEpoch(train, sequenceLength, 1);
            batchSize = PowerOfTwoAtMost(Math.Clamp((int)(rows * auto.BatchFraction), 1, auto.MaxBatchSize));
        }

        var stepsPerEpoch = LlamaTrainer.StepsPerEpoch(train, sequenceLength, batchSize);
        var epochs = job.Epochs;
        if (isAuto.Contains(FineTuneJob.EpochsName))
        {
            epochs = train.Count * DefaultEpochs > MaxTargetExamples ? Math.Max(1, MaxTargetExamples / train.Count) : DefaultEpochs;
            epochs = Math.Min(Math.Max(epochs, (auto.MinimumSteps + stepsPerEpoch - 1) / stepsPerEpoch), auto.MaxEpochs);
        }

        var learningRate = job.LearningRate;
        if (isAuto.Contains(FineTuneJob.LearningRateName))
        {
            var batchScale = Math.Sqrt((double)batchSize / ReferenceBatchSize);
            learningRate = job.Adapter == FineTuneJob.FullAdapter
                ? auto.FullLearningRate * batchScale
                : auto.LoraLearningRate * batchScale * ReferenceLoraScale / (settings.Training.LoraAlpha / (job.LoraRank ?? settings.Training.LoraRank));
            learningRate = Math.Clamp(Math.Round(learningRate, 6, MidpointRounding.AwayFromZero), settings.Limits.MinLearningRate, settings.Limits.MaxLearningRate);
        }

        return new PlannedHyperparameters(learningRate, epochs, batchSize, stepsPerEpoch, job.AutoHyperparameters);
    }

    private static int PowerOfTwoAtMost(int value)
    {
        var power = 1;
        while (power * 2 <= value)
        {
            power *= 2;
        }

        return power;
    }
}
