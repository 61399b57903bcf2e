namespace LLMTune.Engine.Inference;

public enum ChatRole
{
    System,
    User,
    Assistant,
}

public sealed record ChatMessage(ChatRole Role, string Content)
{
    public static ChatMessage System(string content) => new(ChatRole.System, content);
    public static ChatMessage User(string content) => new(ChatRole.User, content);
    public static ChatMessage Assistant(string content) => new(ChatRole.Assistant, content);
}

/// <summary>
/// One generation. Give either <see cref="Prompt"/> (raw text completion) or <see cref="Messages"/>
/// (rendered with the model's chat template, ChatML when it has none).
/// </summary>
public sealed partial record GenerationRequest
{
    public string? Prompt { get; init; }

    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary>Completion token limit; null means whatever room the context leaves after the prompt.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>0 samples greedily (deterministic); higher values flatten the distribution.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Nucleus sampling mass in (0, 1]; 1 disables it.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Generation ends before any of these strings; the returned text never contains them.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Sampling seed; the same seed, prompt and settings give the same text when run alone.</summary>
    public uint? Seed { get; init; }

    /// <summary>
    /// Never sample end-of-generation tokens, so only maxTokens, a stop sequence or the context ends the text
    /// (fixed-length generation for benchmarks and load tests, like vLLM's ignore_eos).
    /// </summary>
    public bool IgnoreEndOfGeneration { get; init; }

    /// <summary>The LoRA variant of the model to use; null is the base model.</summary>
    public string? Variant { get; init; }

    /// <summary>
    /// Subtracted once from the logit of every token already generated (OpenAI's presence penalty, in [-2, 2]).
    /// Penalties count the completion only, not the prompt.
    /// </summary>
    public float PresencePenalty { get; init; }

    /// <summary>Subtracted from a token's logit once per time it was already generated (OpenAI's frequency penalty, in [-2, 2]).</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Added to the logits of these token ids before sampling; -100 or less bans the token, 100 or more forces it.</summary>
    public IReadOnlyDictionary<int, float> LogitBias { get; init; } = new Dictionary<int, float>();

    /// <summary>
    /// Null: no log probabilities. Otherwise every generated token carries its log probability under the model and
    /// this many most likely alternatives (0 to <see cref="MaxTopLogprobs"/>).
    /// </summary>
    public int? TopLogprobs { get; init; }

    /// <summary>
    /// Independent completions of the same prompt (OpenAI's n). The prompt is evaluated once; the other choices start
    /// from a copy of its KV cells. Choice i samples with seed <see cref="Seed"/> + i.
    /// </summary>
    public int Choices { get; init; } = 1;

    public const int MaxTopLogprobs = 20;

    public const int MaxChoices = 8;

    internal void Validate()
    {
        if ((Prompt is null) == (Messages is null))
        {
            throw new ArgumentException("Give exactly one of Prompt or Messages.");
        }

        if (Messages is { Count: 0 })
        {
            throw new ArgumentException("Messages must not be empty.", nameof(Messages));
        }

        if (MaxTokens is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "maxTokens must be at least 1.");
        }

        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be a finite number ≥ 0.");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "topP must be in (0, 1].");
        }

        if (!(PresencePenalty is >= -2 and <= 2))
        {
            throw new ArgumentOutOfRangeException(nameof(PresencePenalty), PresencePenalty, "presencePenalty must be between -2 and 2.");
        }

        if (!(FrequencyPenalty is >= -2 and <= 2))
        {
            throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), FrequencyPenalty, "frequencyPenalty must be between -2 and 2.");
        }

        if (TopLogprobs is < 0 or > MaxTopLogprobs)
        {
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), TopLogprobs, $"topLogprobs must be between 0 and {MaxTopLogprobs}.");
        }

        if (Choices is < 1 or > MaxChoices)
        {
            throw new ArgumentOutOfRangeException(nameof(Choices), Choices, $"choices must be between 1 and {MaxChoices}.");
        }

        if (LogitBias.Values.Any(b => float.IsNaN(b)))
        {
            throw new ArgumentException("Logit biases must be numbers.", nameof(LogitBias));
        }

        ValidateGrammar();
        if (Stop.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Stop sequences must not be empty.", nameof(Stop));
        }
    }
}

public enum FinishReason
{
    /// <summary>The model produced an end-of-generation token or a stop sequence.</summary>
    Stop,

    /// <summary>maxTokens (or the context) was reached.</summary>
    Length,

    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>
/// One sampled token and the text it released. <see cref="Text"/> can be empty (a partial UTF-8 character,
/// text held back because it may start a stop sequence, a control token). The last token of a finished generation
/// carries <see cref="Result"/>.
/// </summary>
public sealed record GeneratedToken(int TokenId, string Text, int Index, GenerationResult? Result = null)
{
    /// <summary>The token's log probability and alternatives when the request asked for them.</summary>
    public TokenLogprob? Logprob { get; init; }
}

/// <summary>
/// A generated token under the model's distribution (log-softmax of the raw logits, before biases, penalties and
/// temperature, as vLLM reports them): its text and UTF-8 bytes (a token can hold part of a character), and the most
/// likely tokens at that position, most likely first.
/// </summary>
public sealed record TokenLogprob(string Token, byte[] Bytes, float Logprob, IReadOnlyList<TokenAlternative> Top);

/// <summary>One of the most likely tokens at a position.</summary>
public sealed record TokenAlternative(string Token, byte[] Bytes, float Logprob);

public sealed record GenerationResult(
    string Text,
    int PromptTokens,
    int CompletionTokens,
    FinishReason FinishReason,
    TimeSpan TimeToFirstToken,
    TimeSpan Duration)
{
    /// <summary>One entry per generated token when the request asked for log probabilities, else null.</summary>
    public IReadOnlyList<TokenLogprob>? Logprobs { get; init; }
}
