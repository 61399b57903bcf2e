namespace LLMTune.Engine.Training;

/// <summary>
/// One training sequence as token ids (any tokenizer). Only tokens marked as trained contribute to the loss:
/// by default everything after the first <see cref="PromptLength"/> tokens (the completion), or, when
/// <see cref="LossMask"/> is given, exactly the positions where it is true.
/// </summary>
public sealed record TrainingExample
{
    public TrainingExample(IReadOnlyList<int> tokens, int promptLength = 0, IReadOnlyList<bool>? lossMask = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfNegative(promptLength);
        if (lossMask is not null && lossMask.Count != tokens.Count)
        {
            throw new ArgumentException("The loss mask must have one entry per token.", nameof(lossMask));
        }

        Tokens = tokens;
        PromptLength = promptLength;
        LossMask = lossMask;
    }

    public IReadOnlyList<int> Tokens { get; }

    /// <summary>Leading tokens (the prompt) that are context only and never predicted in the loss.</summary>
    public int PromptLength { get; }

    /// <summary>Optional per-token flag: true where the token is a prediction target.</summary>
    public IReadOnlyList<bool>? LossMask { get; }

    /// <summary>Whether the token at <paramref name="index"/> is a target of the loss.</summary>
    public bool IsTrained(int index) => LossMask?[index] ?? index >= PromptLength;
}
