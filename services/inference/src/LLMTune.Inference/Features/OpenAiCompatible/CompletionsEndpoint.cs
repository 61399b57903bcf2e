using System.Diagnostics;
using System.Text.Json;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary><c>POST /v1/completions</c> (OpenAI's legacy text completions): the prompt is continued as raw text.</summary>
public static class CompletionsEndpoint
{
    /// <summary>OpenAI's default completion length for this endpoint.</summary>
    public const int DefaultMaxTokens = 16;

    public static async Task<IResult> HandleAsync(HttpContext http, InferenceService inference, UsageMeter meter, TimeProvider time)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<CompletionRequest>(http, OpenAiJson.Options);
        OpenAiParameters.RejectUnsupported(request.Other);
        var sampling = OpenAiParameters.Sampling(request.Temperature, request.TopP, request.MaxTokens ?? DefaultMaxTokens, "max_tokens",
            request.Stop, request.Seed, request.N, ParameterNames.OpenAiCompletion);
        var input = sampling with { Generation = sampling.Generation with { Prompt = Prompt(request.Prompt) } };

        var model = await inference.ResolveAsync(request.Model, http.User.WorkspaceIdOf(), "model", http.RequestAborted);
        var stream = request.Stream == true;
        var call = await inference.StartAsync(model, input, stream, http);
        await using var session = meter.Begin(http, call, startedAt, stream);
        var id = "cmpl-" + Base62.Random(24);
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        if (!stream)
        {
            var outcome = await call.CompleteAsync(http.RequestAborted);
            return OpenAiJson.Result(new TextCompletion(id, "text_completion", created, outcome.Model,
                [new TextChoice(outcome.Text, 0, null, outcome.FinishReason)], Usage.From(outcome), null));
        }

        var includeUsage = request.StreamOptions?.IncludeUsage == true;
        TextCompletion Chunk(string text, string? finishReason) =>
            new(id, "text_completion", created, call.Model, [new TextChoice(text, 0, null, finishReason)], null, null);

        await ServerSentEvents.StartAsync(http.Response);
        await ServerSentEvents.RelayAsync(
            http,
            call,
            delta => ServerSentEvents.WriteAsync(http.Response, Chunk(delta, null), OpenAiJson.Options, flush: false),
            async outcome =>
            {
                await ServerSentEvents.WriteAsync(http.Response, Chunk("", outcome.FinishReason), OpenAiJson.Options);
                if (includeUsage)
                {
                    await ServerSentEvents.WriteAsync(http.Response,
                        new TextCompletion(id, "text_completion", created, outcome.Model, [], Usage.From(outcome), null), OpenAiJson.Options);
                }

                await ServerSentEvents.WriteRawAsync(http.Response, "[DONE]");
            },
            error => ServerSentEvents.WriteAsync(http.Response, ServerSentEvents.ErrorBody(http, error), OpenAiJson.Options));
        return Results.Empty;
    }

    /// <summary>A string, or a list holding one string; token arrays and batches of prompts are not supported.</summary>
    private static string Prompt(JsonElement? prompt) => prompt switch
    {
        { ValueKind: JsonValueKind.String } text when text.GetString()!.Length > 0 => text.GetString()!,
        { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() == 1 && list[0].ValueKind == JsonValueKind.String && list[0].GetString()!.Length > 0
            => list[0].GetString()!,
        { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() > 1
            => throw InferenceException.Unsupported("prompt", "Only one prompt per request is supported: send one request per prompt."),
        _ => throw InferenceException.Invalid("prompt", "prompt must be a non-empty string."),
    };
}
