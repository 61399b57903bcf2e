using LLMTune.Engine.Inference;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// What every endpoint asks of a model, once its own parameters are validated, and how that API names them, so errors
/// name what the caller sent (<c>maxTokens</c> or <c>max_tokens</c>). A null <c>MaxTokens</c> takes the server default.
/// <paramref name="PromptAsUserTurn"/>: the <c>Prompt</c> is a request, not text to continue (the native API), so the
/// service sends it as a user turn to models with a chat template and as raw text to base models.
/// </summary>
/// <paramref name="ToolPrompt"/>: tool definitions for the system prompt of local models whose chat template has a tool format.
public sealed record InferenceInput(GenerationRequest Generation, ParameterNames Names, bool PromptAsUserTurn = false, string? ToolPrompt = null);

/// <summary>How one API spells its parameters in error messages.</summary>
public sealed record ParameterNames(string Prompt, string MaxTokens)
{
    public static readonly ParameterNames Native = new("prompt", "maxTokens");
    public static readonly ParameterNames OpenAiChat = new("messages", "max_tokens");
    public static readonly ParameterNames OpenAiCompletion = new("prompt", "max_tokens");
}

/// <summary>
/// The end of a call: the model that answered, the text, usage and why it ended
/// (<c>stop</c>, <c>length</c>, <c>cancelled</c> when the client left, <c>error</c> when the model failed mid-way).
/// With several choices, <see cref="Text"/> and <see cref="FinishReason"/> are the first choice's and
/// <see cref="CompletionTokens"/> counts the tokens of all of them (the prompt counts once).
/// </summary>
public sealed record InferenceOutcome(string Model, string Text, int PromptTokens, int CompletionTokens, string FinishReason)
{
    public const string Stop = "stop";
    public const string Length = "length";
    public const string Cancelled = "cancelled";
    public const string Error = "error";

    /// <summary>Every choice in order; one (the text above) unless the request asked for more.</summary>
    public IReadOnlyList<ChoiceOutcome> Choices
    {
        get => field ?? [new ChoiceOutcome(0, Text, FinishReason, null)];
        init;
    }
}

/// <summary>One choice's text, why it ended, and its tokens' log probabilities when they were asked for.</summary>
public sealed record ChoiceOutcome(int Index, string Text, string FinishReason, IReadOnlyList<TokenLogprob>? Logprobs);

/// <summary>A streamed piece: the choice it belongs to, its text (may be empty) and the token's log probability when asked for.</summary>
public sealed record ModelDelta(int Choice, string Text, TokenLogprob? Logprob = null);

/// <summary>
/// A started generation on a local or upstream model. Errors that can still become an HTTP status (unknown model,
/// bad parameters, busy, upstream down) are thrown before a call exists; a call only fails mid-way.
/// </summary>
public abstract class ModelCall : IAsyncDisposable
{
    /// <summary>The model that answers (a fallback's id when the requested model's upstream failed).</summary>
    public abstract string Model { get; }

    /// <summary>Text deltas as the model produces them; ends when the generation does.</summary>
    public abstract IAsyncEnumerable<string> StreamAsync(CancellationToken cancellationToken);

    /// <summary>The deltas with their choice and log probabilities; a call with one choice and none streams its text as choice 0.</summary>
    public virtual async IAsyncEnumerable<ModelDelta> StreamDeltasAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var text in StreamAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return new ModelDelta(0, text);
        }
    }

    /// <summary>Runs to the end (or returns the end a finished stream reached).</summary>
    public abstract Task<InferenceOutcome> CompleteAsync(CancellationToken cancellationToken);

    /// <summary>What has happened so far, for metering: final when done, partial when cut short.</summary>
    public abstract InferenceOutcome Snapshot();

    /// <summary>Stops anything still running and frees the model's slot.</summary>
    public abstract ValueTask DisposeAsync();
}
