using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary><c>POST /v1/chat/completions</c> as OpenAI defines it, JSON or streamed chunks ending in <c>data: [DONE]</c>.</summary>
public static class ChatCompletionsEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, InferenceService inference, UsageMeter meter, TimeProvider time)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var request = await JsonBody.ReadAsync<ChatCompletionRequest>(http, OpenAiJson.Options);
        OpenAiParameters.RejectUnsupported(request.Other);
        var messages = Messages(request.Messages);
        var (maxTokens, maxTokensName) = request.MaxCompletionTokens is { } completion
            ? (completion, "max_completion_tokens")
            : (request.MaxTokens, "max_tokens");
        var sampling = OpenAiParameters.Sampling(request.Temperature, request.TopP, maxTokens, maxTokensName, request.Stop, request.Seed, request.N, ParameterNames.OpenAiChat);
        var input = sampling with { Generation = sampling.Generation with { Messages = messages } };

        var model = await inference.ResolveAsync(request.Model, http.User.WorkspaceIdOf(), "model", http.RequestAborted);
        var stream = request.Stream == true;
        var call = await inference.StartAsync(model, input, stream, http);
        await using var session = meter.Begin(http, call, startedAt, stream);
        var id = "chatcmpl-" + Base62.Random(24);
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        if (!stream)
        {
            var outcome = await call.CompleteAsync(http.RequestAborted);
            return OpenAiJson.Result(new ChatCompletion(id, "chat.completion", created, outcome.Model,
                [new ChatChoice(0, new AssistantMessage("assistant", outcome.Text, null), null, outcome.FinishReason)],
                Usage.From(outcome), null));
        }

        var includeUsage = request.StreamOptions?.IncludeUsage == true;
        ChatCompletionChunk Chunk(ChunkDelta delta, string? finishReason) =>
            new(id, "chat.completion.chunk", created, call.Model, [new ChunkChoice(0, delta, null, finishReason)], null, null);

        await ServerSentEvents.StartAsync(http.Response);
        await ServerSentEvents.WriteAsync(http.Response, Chunk(new ChunkDelta("assistant", ""), null), OpenAiJson.Options);
        await ServerSentEvents.RelayAsync(
            http,
            call,
            delta => ServerSentEvents.WriteAsync(http.Response, Chunk(new ChunkDelta(null, delta), null), OpenAiJson.Options, flush: false),
            async outcome =>
            {
                await ServerSentEvents.WriteAsync(http.Response, Chunk(new ChunkDelta(null, null), outcome.FinishReason), OpenAiJson.Options);
                if (includeUsage)
                {
                    await ServerSentEvents.WriteAsync(http.Response,
                        new ChatCompletionChunk(id, "chat.completion.chunk", created, outcome.Model, [], Usage.From(outcome), null), OpenAiJson.Options);
                }

                await ServerSentEvents.WriteRawAsync(http.Response, "[DONE]");
            },
            error => ServerSentEvents.WriteAsync(http.Response, ServerSentEvents.ErrorBody(http, error), OpenAiJson.Options));
        return Results.Empty;
    }

    private static List<ChatMessage> Messages(List<ChatMessageIn>? messages)
    {
        if (messages is not { Count: > 0 })
        {
            throw InferenceException.Invalid("messages", "messages must be a non-empty list.");
        }

        var result = new List<ChatMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw InferenceException.Invalid($"messages[{i}]", $"messages[{i}] must be an object.");
            var role = message.Role switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                "tool" or "function" => throw InferenceException.Unsupported($"messages[{i}].role", "Tool and function messages are not supported by this server."),
                _ => throw InferenceException.Invalid($"messages[{i}].role", $"messages[{i}].role must be system, developer, user or assistant."),
            };
            if (message.Other?.TryGetValue("tool_calls", out var calls) == true && calls.ValueKind is JsonValueKind.Array && calls.GetArrayLength() > 0)
            {
                throw InferenceException.Unsupported($"messages[{i}].tool_calls", "Tool calls are not supported by this server.");
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
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.GetString() != "text"
                        || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                    {
                        throw InferenceException.Unsupported($"messages[{index}].content", "Only text content parts are supported by this server.");
                    }

                    joined.Append(partText.GetString());
                }

                return joined.ToString();
            default:
                throw InferenceException.Invalid($"messages[{index}].content", $"messages[{index}].content must be a string or a list of text parts.");
        }
    }
}
