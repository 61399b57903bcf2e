using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary><c>POST /v1/chat/completions</c> as OpenAI defines it, JSON or streamed chunks ending in <c>data: [DONE]</c>.</summary>
public static class ChatCompletionsEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, InferenceResponder responder, TimeProvider time)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var body = await JsonBody.ReadBytesAsync(http);
        var request = JsonBody.Parse<ChatCompletionRequest>(body, OpenAiJson.Options);
        var format = new ChatFormat("chatcmpl-" + Base62.Random(24), time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true, request.N ?? 1);
        return await responder.RespondAsync(http,
            new InferenceRequest(request.Model, "model", () => LocalInput(request), request.Stream == true, startedAt, new UpstreamRequest("chat/completions", body)),
            format);
    }

    /// <summary>The request as this server's own models take it; what they do not offer is refused with a 400 naming it.</summary>
    private static InferenceInput LocalInput(ChatCompletionRequest request)
    {
        OpenAiParameters.RejectUnsupported(request.Other);
        var messages = Messages(request.Messages);
        var (maxTokens, maxTokensName) = request.MaxCompletionTokens is { } completion
            ? (completion, "max_completion_tokens")
            : (request.MaxTokens, "max_tokens");
        if (request.TopLogprobs is not null && request.Logprobs != true)
        {
            throw ApiException.Invalid("top_logprobs", "top_logprobs needs logprobs: true.");
        }

        var sampling = OpenAiParameters.Sampling(
            new SamplingParameters(request.Temperature, request.TopP, maxTokens, maxTokensName, request.Stop, request.Seed, request.N,
                request.PresencePenalty, request.FrequencyPenalty, request.LogitBias, request.Logprobs == true ? request.TopLogprobs ?? 0 : null, "top_logprobs"),
            ParameterNames.OpenAiChat);
        return sampling with { Generation = sampling.Generation with { Messages = messages } };
    }

    private static List<ChatMessage> Messages(List<ChatMessageIn>? messages)
    {
        if (messages is not { Count: > 0 })
        {
            throw ApiException.Invalid("messages", "messages must be a non-empty list.");
        }

        var result = new List<ChatMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw ApiException.Invalid($"messages[{i}]", $"messages[{i}] must be an object.");
            var role = message.Role switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                "tool" or "function" => throw ApiException.Unsupported($"messages[{i}].role", "Tool and function messages are not supported by this server."),
                _ => throw ApiException.Invalid($"messages[{i}].role", $"messages[{i}].role must be system, developer, user or assistant."),
            };
            if (message.Other?.TryGetValue("tool_calls", out var calls) == true && calls.ValueKind is JsonValueKind.Array && calls.GetArrayLength() > 0)
            {
                throw ApiException.Unsupported($"messages[{i}].tool_calls", "Tool calls are not supported by this server.");
            }

            result.Add(new ChatMessage(role, Content(message.Content, i)));
        }

        return result;
    }

    /// <summary>A string, or a list of text parts (joined); other part types (images, audio) are not supported.</summary>
    private static string Content(JsonElement? content, int index)
    {
        switch (content)
        {
            case { ValueKind: JsonValueKind.String } text:
                return text.GetString()!;
            case { ValueKind: JsonValueKind.Array } parts:
                var joined = new StringBuilder();
                foreach (var part in parts.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"
                        || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                    {
                        throw ApiException.Unsupported($"messages[{index}].content", "Only text content parts are supported by this server.");
                    }

                    joined.Append(partText.GetString());
                }

                return joined.ToString();
            default:
                throw ApiException.Invalid($"messages[{index}].content", $"messages[{index}].content must be a string or a list of text parts.");
        }
    }
}

/// <summary>A <c>chat.completion</c>, or <c>chat.completion.chunk</c>s that open with the assistant role (once per choice).</summary>
internal sealed class ChatFormat(string id, long created, bool includeUsage, int choices) : OpenAiStreamFormat(includeUsage)
{
    public override object Response(InferenceOutcome outcome, long latencyMs) =>
        new ChatCompletion(id, "chat.completion", created, outcome.Model,
            outcome.Choices.Select(c => new ChatChoice(c.Index, new AssistantMessage("assistant", c.Text, null), ChatLogprobs.From(c.Logprobs), c.FinishReason)).ToArray(),
            Usage.From(outcome), null);

    public override async Task StreamStartAsync(HttpResponse response, string model)
    {
        for (var choice = 0; choice < choices; choice++)
        {
            await ServerSentEvents.WriteAsync(response, Chunk(model, choice, new ChunkDelta("assistant", ""), null, null), Json);
        }
    }

    protected override object Chunk(string model, int choice, string? delta, Engine.Inference.TokenLogprob? logprob, string? finishReason) =>
        Chunk(model, choice, new ChunkDelta(null, delta), logprob is null ? null : ChatLogprobs.From([logprob]), finishReason);

    protected override object UsageChunk(string model, Usage usage) =>
        new ChatCompletionChunk(id, "chat.completion.chunk", created, model, [], usage, null);

    private ChatCompletionChunk Chunk(string model, int choice, ChunkDelta delta, ChatLogprobs? logprobs, string? finishReason) =>
        new(id, "chat.completion.chunk", created, model, [new ChunkChoice(choice, delta, logprobs, finishReason)], null, null);
}
