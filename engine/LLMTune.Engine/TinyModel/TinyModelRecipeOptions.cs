using LLMTune.Engine.Tokenization;

namespace LLMTune.Engine.TinyModel;

/// <summary>Shape of the tiny llama model.</summary>
public sealed record TinyModelShape
{
    public int EmbeddingLength { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 4;
    public int FeedForwardLength { get; init; } = 384;
    public int ContextLength { get; init; } = 256;
    public float RopeFreqBase { get; init; } = 10_000f;
    public float RmsNormEpsilon { get; init; } = 1e-5f;
}

/// <summary>Everything that determines the bundled model; the same options (and thread count) give the same bytes.</summary>
public sealed record TinyModelRecipeOptions
{
    public int Seed { get; init; } = 1234;

    /// <summary>Where the GGUF is written (its folder is created).</summary>
    public string OutputPath { get; init; } = Path.Combine("models", "llmtune-tiny.gguf");

    /// <summary>
    /// ggml threads for training. The result does not depend on it (1 and 2 threads give identical bytes), only the
    /// speed does: ggml's workers spin at barriers, so on busy cores fewer threads are faster. Default: half the
    /// logical processors (one on a 2-core machine).
    /// </summary>
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount / 2);

    public TinyCorpusOptions Corpus { get; init; } = new();

    public BpeTrainerOptions Tokenizer { get; init; } = new() { VocabularySize = 512 };

    public TinyModelShape Shape { get; init; } = new();

    /// <summary>Passes over the training exchanges; the held-out loss is measured after each.</summary>
    public int Epochs { get; init; } = 2;

    /// <summary>Stops after this many optimiser steps instead (for quick reduced runs).</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Rows per optimiser step.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per row; several exchanges are packed into one row, each attending only to itself.</summary>
    public int SequenceLength { get; init; } = 128;

    /// <summary>Peak AdamW learning rate (linear warmup, cosine decay to <see cref="FinalLearningRateFraction"/> of it).</summary>
    public float LearningRate { get; init; } = 3e-3f;
    public float FinalLearningRateFraction { get; init; } = 0.05f;
    public int WarmupSteps { get; init; } = 100;
    public float WeightDecay { get; init; } = 0.01f;

    /// <summary>Standard deviation of the initial weights.</summary>
    public float InitStd { get; init; } = 0.02f;

    /// <summary>Train on the assistant's answer only (prompt tokens are context, not targets).</summary>
    public bool MaskPrompts { get; init; } = true;

    /// <summary>Score the finished model on the held-out set through llama.cpp.</summary>
    public bool Evaluate { get; init; } = true;

    /// <summary>Training loss is summarised (mean over a window) every this many steps for the loss curve.</summary>
    public int LossCurveInterval { get; init; } = 250;
}

/// <summary>Where the recipe is: a stage name, progress within the whole recipe, and the last training figures.</summary>
public sealed record RecipeProgress(string Stage, double Fraction, int Step = 0, int TotalSteps = 0, float? Loss = null,
    float? EvalLoss = null, double? TokensPerSecond = null);

/// <summary>One point of the loss curve: mean training loss over the window ending at <see cref="Step"/>, and the held-out loss when measured there.</summary>
public sealed record LossPoint(int Step, float TrainLoss, float? EvalLoss);

/// <summary>What <see cref="TinyModelRecipe.BuildAsync"/> produced and how long it took.</summary>
public sealed record TinyModelBuildResult
{
    public required string OutputPath { get; init; }
    public required long FileBytes { get; init; }
    public required long Parameters { get; init; }
    public required int VocabularySize { get; init; }
    public required int TrainingExchanges { get; init; }
    public required int Steps { get; init; }
    public required long TrainedTokens { get; init; }
    public required double TokensPerSecond { get; init; }
    public required float? InitialEvalLoss { get; init; }
    public required float? FinalEvalLoss { get; init; }
    public required IReadOnlyList<LossPoint> LossCurve { get; init; }
    public required TimeSpan TrainingTime { get; init; }
    public required TimeSpan TotalTime { get; init; }
    public TinyEvaluationReport? Evaluation { get; init; }
}
