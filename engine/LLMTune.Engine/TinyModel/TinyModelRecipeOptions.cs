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

    public int Threads { get; init; } = 2;

    public TinyCorpusOptions Corpus { get; init; } = new();

    public BpeTrainerOptions Tokenizer { get; init; } = new() { VocabularySize = 512 };

    public TinyModelShape Shape { get; init; } = new();

    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 3000;

    /// <summary>Sequences per step.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Tokens per training sequence (several exchanges are packed into one).</summary>
    public int SequenceLength { get; init; } = 64;

    public float LearningRate { get; init; } = 2e-3f;
    public float MinLearningRate { get; init; } = 1e-4f;
    public int WarmupSteps { get; init; } = 100;
    public float WeightDecay { get; init; } = 0.01f;

    /// <summary>Evaluate the held-out loss every this many steps (0: only at the end).</summary>
    public int EvalEverySteps { get; init; } = 250;
}

/// <summary>Where the recipe is: a stage name, progress within the whole recipe, and the last training figures.</summary>
public sealed record RecipeProgress(string Stage, double Fraction, int Step = 0, int TotalSteps = 0, float? Loss = null,
    float? EvalLoss = null, double? TokensPerSecond = null);
