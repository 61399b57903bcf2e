using System.Diagnostics;
using System.Text.Json;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary><c>POST /v1/completions</c> (OpenAI's legacy text completions): the prompt is continued as raw text.</summary>
public static class CompletionsEndpoint
{
    /// <summary>OpenAI's default completion length for this endpoint.</summary>
    public const int DefaultMaxTokens = 16;

    public static async Task<IResult> HandleAsync(HttpContext http, InferenceResponder responder, TimeProvider time)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var body = await JsonBody.ReadBytesAsync(http);
        var request = JsonBody.Parse<CompletionRequest>(body, OpenAiJson.Options);
        var format = new CompletionFormat("cmpl-" + Base62.Random(24), time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        return await responder.RespondAsync(http,
            new InferenceRequest(request.Model, "model", () => LocalInput(request), request.Stream == true, startedAt, new UpstreamRequest("completions", body)),
            format);
    }

    /// <summary>One line of an OpenAI batch: the same request and answer, never streamed.</summary>
    internal static OpenAiBatchCall ForBatch(ReadOnlyMemory<byte> body, TimeProvider time)
    {
        var request = JsonBody.Parse<CompletionRequest>(body, OpenAiJson.Options);
        var format = new CompletionFormat("cmpl-" + Base62.Random(24), time.GetUtcNow().ToUnixTimeSeconds(), false);
        return new OpenAiBatchCall(request.Model, () => LocalInput(request), format);
    }

    /// <summary>The request as this server's own models take it; what they do not offer is refused with a 400 naming it.</summary>
    private static InferenceInput LocalInput(CompletionRequest request)
    {
        OpenAiParameters.RejectUnsupported(request.Other);
        var sampling = OpenAiParameters.Sampling(
            new SamplingParameters(request.Temperature, request.TopP, request.MaxTokens ?? DefaultMaxTokens, "max_tokens", request.Stop, request.Seed, request.N,
                request.PresencePenalty, request.FrequencyPenalty, request.LogitBias, request.Logprobs, "logprobs"),
            ParameterNames.OpenAiCompletion);
        return sampling with { Generation = sampling.Generation with { Prompt = Prompt(request.Prompt) } };
    }

    /// <summary>A string, or a list holding one string; token arrays and batches of prompts are not supported.</summary>
    private static string Prompt(JsonElement? prompt) => prompt switch
    {
        { ValueKind: JsonValueKind.String } text when text.GetString()!.Length > 0 => text.GetString()!,
        { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() == 1 && list[0].ValueKind == JsonValueKind.String && list[0].GetString()!.Length > 0
            => list[0].GetString()!,
        { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() > 1
            => throw ApiException.Unsupported("prompt", "Only one prompt per request is supported: send one request per prompt."),
        _ => throw ApiException.Invalid("prompt", "prompt must be a non-empty string."),
    };
}

/// <summary>A <c>text_completion</c>, streamed as <c>text_completion</c> objects carrying one piece each.</summary>
internal sealed class CompletionFormat(string id, long created, bool includeUsage) : OpenAiStreamFormat(includeUsage)
{
    private readonly Dictionary<int, int> _streamedLength = [];

    public override object Response(InferenceOutcome outcome, long latencyMs) =>
        new TextCompletion(id, "text_completion", created, outcome.Model,
            outcome.Choices.Select(c => new TextChoice(c.Text, c.Index, TextLogprobs.From(c.Logprobs), c.FinishReason)).ToArray(), Usage.From(outcome), null);

    protected override object Chunk(string model, int choice, string? delta, Engine.Inference.TokenLogprob? logprob, string? finishReason)
    {
        // text_offset counts from the start of the choice's text, across chunks.
        var offset = _streamedLength.GetValueOrDefault(choice);
        _streamedLength[choice] = offset + (logprob?.Token.Length ?? 0);
        return new TextCompletion(id, "text_completion", created, model,
            [new TextChoice(delta ?? "", choice, logprob is null ? null : TextLogprobs.From([logprob], offset), finishReason)], null, null);
    }

    protected override object UsageChunk(string model, Usage usage) =>
        new TextCompletion(id, "text_completion", created, model, [], usage, null);
}
