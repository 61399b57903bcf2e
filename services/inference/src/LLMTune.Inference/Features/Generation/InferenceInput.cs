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
/// </summary>
public sealed record InferenceOutcome(string Model, string Text, int PromptTokens, int CompletionTokens, string FinishReason)
{
    public const string Stop = "stop";
    public const string Length = "length";
    public const string Cancelled = "cancelled";
    public const string Error = "error";
}

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

    /// <summary>Runs to the end (or returns the end a finished stream reached).</summary>
    public abstract Task<InferenceOutcome> CompleteAsync(CancellationToken cancellationToken);

    /// <summary>What has happened so far, for metering: final when done, partial when cut short.</summary>
    public abstract InferenceOutcome Snapshot();

    /// <summary>Stops anything still running and frees the model's slot.</summary>
    public abstract ValueTask DisposeAsync();
}
