using System.Text.Json;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>
/// OpenAI's stream ending, shared by chat and completions: a chunk with the finish reason, the usage chunk when
/// <c>stream_options.include_usage</c> asked for it, then <c>data: [DONE]</c>.
/// </summary>
internal abstract class OpenAiStreamFormat(bool includeUsage) : IInferenceFormat
{
    public JsonSerializerOptions Json => OpenAiJson.Options;

    public abstract object Response(InferenceOutcome outcome, long latencyMs);

    public virtual Task StreamStartAsync(HttpResponse response, string model) => Task.CompletedTask;

    public virtual Task StreamDeltaAsync(HttpResponse response, string model, ModelDelta delta) =>
        ServerSentEvents.WriteAsync(response, Chunk(model, delta.Choice, delta.Text, delta.Logprob, null), Json, flush: false);

    public virtual Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs) =>
        EndAsync(response, outcome, choice => choice.FinishReason);

    /// <summary>Each choice's finish-reason chunk (as <paramref name="finishReason"/> tells it), the usage chunk if asked for, then <c>[DONE]</c>.</summary>
    protected async Task EndAsync(HttpResponse response, InferenceOutcome outcome, Func<ChoiceOutcome, string> finishReason)
    {
        foreach (var choice in outcome.Choices)
        {
            await ServerSentEvents.WriteAsync(response, Chunk(outcome.Model, choice.Index, null, null, finishReason(choice)), Json);
        }

        if (includeUsage)
        {
            await ServerSentEvents.WriteAsync(response, UsageChunk(outcome.Model, Usage.From(outcome)), Json);
        }

        await ServerSentEvents.WriteRawAsync(response, "[DONE]");
    }

    public Task StreamErrorAsync(HttpResponse response, ApiErrorBody error) => ServerSentEvents.WriteAsync(response, error, Json);

    /// <summary>A chunk carrying one choice's text piece and its token's log probability, or (with a null piece) its finish reason.</summary>
    protected abstract object Chunk(string model, int choice, string? delta, Engine.Inference.TokenLogprob? logprob, string? finishReason);

    protected abstract object UsageChunk(string model, Usage usage);
}
