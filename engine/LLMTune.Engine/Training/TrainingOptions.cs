namespace LLMTune.Engine.Training;

/// <summary>Which weights a run changes.</summary>
public enum TrainingMode
{
    /// <summary>Every weight of the model is trained; the result is a complete F32 llama GGUF.</summary>
    Full,

    /// <summary>Only low-rank adapters are trained; the base stays untouched and the result is a llama.cpp LoRA adapter GGUF.</summary>
    Lora,
}

/// <summary>LoRA settings. llama.cpp applies an adapter as <c>W·x + (Alpha / Rank)·B·A·x</c>.</summary>
public sealed record LoraOptions
{
    /// <summary>Module names llama.cpp uses in tensor names (<c>blk.N.&lt;module&gt;.weight</c>), plus <c>output</c> for the head.</summary>
    public static readonly IReadOnlyList<string> AllModules = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "output"];

    public int Rank { get; init; } = 8;

    public float Alpha { get; init; } = 16f;

    /// <summary>Which projections get an adapter (see <see cref="AllModules"/>).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];
}

/// <summary>Everything a training run needs besides the data.</summary>
public sealed record TrainingOptions
{
    /// <summary>
    /// A llama-architecture GGUF to start from. Quantized or F16 weights are dequantized to F32 in memory
    /// (frozen in LoRA mode; in full mode they are trained and written back as F32). To pre-train a fresh
    /// model, write a randomly initialised GGUF (e.g. with <c>LlamaGgufBuilder.WriteRandom</c>) and point here.
    /// </summary>
    public required string BaseModelPath { get; init; }

    /// <summary>Where the result goes: a full GGUF (full mode) or a LoRA adapter GGUF. Written atomically at the end.</summary>
    public required string OutputPath { get; init; }

    public TrainingMode Mode { get; init; } = TrainingMode.Lora;

    public LoraOptions Lora { get; init; } = new();

    /// <summary>Peak AdamW learning rate (reached after warmup, then cosine-decayed).</summary>
    public float LearningRate { get; init; } = 1e-3f;

    /// <summary>Steps of linear warmup; null picks 5% of the run (at most 100).</summary>
    public int? WarmupSteps { get; init; }

    /// <summary>The cosine schedule ends at this fraction of <see cref="LearningRate"/>.</summary>
    public float FinalLearningRateFraction { get; init; } = 0.1f;

    public float WeightDecay { get; init; }

    /// <summary>Passes over the training data (ignored when <see cref="MaxSteps"/> is set).</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Stops after this many optimiser steps, cycling over the data as needed.</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Rows (sequences) per optimiser step.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per row; longer examples are truncated to it.</summary>
    public int SequenceLength { get; init; } = 128;

    /// <summary>Packs several short examples into one row (each keeps its own positions and attention).</summary>
    public bool PackSequences { get; init; } = true;

    /// <summary>CPU threads for ggml. Results are reproducible for a given seed and thread count.</summary>
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Seeds the data order and the LoRA initialisation.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Folder for checkpoints; null disables checkpointing and resuming.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many steps (0: never).</summary>
    public int CheckpointInterval { get; init; }

    /// <summary>Continue from a checkpoint found in <see cref="CheckpointDirectory"/> (its step, epoch and loss carry on).</summary>
    public bool ResumeFromCheckpoint { get; init; } = true;

    /// <summary>
    /// Keep checkpoints when the run is cancelled, so a later run can resume (e.g. cancelled because the host
    /// is shutting down). By default a cancelled run leaves nothing behind.
    /// </summary>
    public bool KeepCheckpointsOnCancel { get; init; }

    /// <summary>
    /// Stop when the eval loss (measured at the end of every epoch) has not improved for this many evaluations in a
    /// row; null never stops early. Needs eval data.
    /// </summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary>
    /// Write the weights of the evaluation with the lowest eval loss as the result, instead of the last step's
    /// (without eval data the last step's are written).
    /// </summary>
    public bool OutputBestEvaluation { get; init; }

    /// <summary>
    /// When set, every evaluation that improves on the best eval loss so far also writes the result as it stands
    /// (<c>step-NNNNNN.gguf</c>, a LoRA adapter or a full model) into this folder, named in the progress report.
    /// </summary>
    public string? SnapshotDirectory { get; init; }

    /// <summary><c>general.name</c> written into the result.</summary>
    public string? ModelName { get; init; }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(BaseModelPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(OutputPath);
        Check(LearningRate > 0 && float.IsFinite(LearningRate), "LearningRate must be positive.");
        Check(FinalLearningRateFraction is >= 0 and <= 1, "FinalLearningRateFraction must be within [0, 1].");
        Check(WeightDecay is >= 0 and <= 1, "WeightDecay must be within [0, 1].");
        Check(Epochs >= 1, "Epochs must be at least 1.");
        Check(MaxSteps is null or >= 1, "MaxSteps must be at least 1.");
        Check(WarmupSteps is null or >= 0, "WarmupSteps cannot be negative.");
        Check(BatchSize >= 1, "BatchSize must be at least 1.");
        Check(SequenceLength >= 2, "SequenceLength must be at least 2.");
        Check(Threads >= 1, "Threads must be at least 1.");
        Check(CheckpointInterval >= 0, "CheckpointInterval cannot be negative.");
        Check(EarlyStoppingPatience is null or >= 1, "EarlyStoppingPatience must be at least 1.");
        if (Mode == TrainingMode.Lora)
        {
            Check(Lora.Rank >= 1, "LoRA rank must be at least 1.");
            Check(Lora.Alpha > 0, "LoRA alpha must be positive.");
            Check(Lora.TargetModules.Count > 0, "LoRA needs at least one target module.");
            foreach (var module in Lora.TargetModules)
            {
                Check(LoraOptions.AllModules.Contains(module), $"Unknown LoRA target module '{module}'.");
            }
        }
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
