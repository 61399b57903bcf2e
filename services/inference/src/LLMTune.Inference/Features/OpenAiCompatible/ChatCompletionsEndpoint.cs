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
        var format = new ChatFormat("chatcmpl-" + Base62.Random(24), time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        return await responder.RespondAsync(http,
            new InferenceRequest(request.Model, "model", () => LocalInput(request, format), request.Stream == true, startedAt, new UpstreamRequest("chat/completions", body)),
            format);
    }

    /// <summary>The request as this server's own models take it; what they do not offer is refused with a 400 naming it.</summary>
    private static InferenceInput LocalInput(ChatCompletionRequest request, ChatFormat format)
    {
        OpenAiParameters.RejectUnsupported(request.Other);
        var tools = ToolPlan.From(request);
        var responseGrammar = StructuredOutput.ResponseFormats.Grammar(request.ResponseFormat);
        var messages = Messages(request.Messages);
        var (maxTokens, maxTokensName) = request.MaxCompletionTokens is { } completion
            ? (completion, "max_completion_tokens")
            : (request.MaxTokens, "max_tokens");
        var sampling = OpenAiParameters.Sampling(request.Temperature, request.TopP, maxTokens, maxTokensName, request.Stop, request.Seed, request.N, ParameterNames.OpenAiChat);
        format.Tools = tools;
        return sampling with
        {
            Generation = sampling.Generation with { Messages = messages, Grammar = tools?.Grammar() ?? responseGrammar },
            ToolPrompt = tools?.SystemPrompt(),
        };
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
                "tool" => ChatRole.User,
                "function" => throw ApiException.Unsupported($"messages[{i}].role", "Function messages (the deprecated functions API) are not supported by this server: use tools."),
                _ => throw ApiException.Invalid($"messages[{i}].role", $"messages[{i}].role must be system, developer, user, assistant or tool."),
            };
            if (message.Role == "tool")
            {
                if (message.ToolCallId is not { Length: > 0 })
                {
                    throw ApiException.Invalid($"messages[{i}].tool_call_id", $"messages[{i}].tool_call_id is required on tool messages.");
                }

                result.Add(ToolPlan.RenderResult(Content(message.Content, i)));
                continue;
            }

            if (message.ToolCalls is { Count: > 0 } calls)
            {
                if (role != ChatRole.Assistant)
                {
                    throw ApiException.Invalid($"messages[{i}].tool_calls", "Only assistant messages carry tool_calls.");
                }

                var text = message.Content is null or { ValueKind: JsonValueKind.Null } ? null : Content(message.Content, i);
                result.Add(ChatMessage.Assistant(ToolPlan.RenderCalls(text, calls, i)));
                continue;
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

/// <summary>
/// A <c>chat.completion</c>, or <c>chat.completion.chunk</c>s that open with the assistant role. With tools, calls come
/// back as <c>tool_calls</c> (<c>finish_reason: "tool_calls"</c>); streamed, a named call's arguments stream as they are
/// decoded, while required and auto answers hold back what may be a call until the end.
/// </summary>
internal sealed class ChatFormat(string id, long created, bool includeUsage) : OpenAiStreamFormat(includeUsage)
{
    private readonly StringBuilder _held = new();
    private bool _namedStarted;

    /// <summary>Set once the request is known to run on a local model.</summary>
    public ToolPlan? Tools { get; set; }

    public override object Response(InferenceOutcome outcome, long latencyMs)
    {
        var (content, calls) = Tools is { Mode: not ToolMode.None } tools ? tools.Parse(outcome.Text) : (outcome.Text, []);
        var message = new AssistantMessage("assistant", content ?? (calls.Count == 0 ? "" : null), null, calls.Count > 0 ? calls : null);
        return new ChatCompletion(id, "chat.completion", created, outcome.Model,
            [new ChatChoice(0, message, null, FinishReason(outcome, calls.Count > 0))], Usage.From(outcome), null);
    }

    public override Task StreamStartAsync(HttpResponse response, string model) =>
        ServerSentEvents.WriteAsync(response, Chunk(model, new ChunkDelta("assistant", ""), null), Json);

    public override Task StreamDeltaAsync(HttpResponse response, string model, string delta)
    {
        switch (Tools?.Mode)
        {
            case ToolMode.Named:
                var first = !_namedStarted;
                _namedStarted = true;
                var call = new ToolCallDelta(0, first ? "call_" + Base62.Random(24) : null, first ? "function" : null,
                    new FunctionCallDelta(first ? Tools.NamedFunction : null, delta));
                return ServerSentEvents.WriteAsync(response, Chunk(model, new ChunkDelta(null, null, [call]), null), Json, flush: false);
            case ToolMode.Required:
                _held.Append(delta);
                return Task.CompletedTask;
            case ToolMode.Auto:
                _held.Append(delta);
                var text = _held.ToString();
                var hold = ToolPlan.HoldFrom(text);
                if (hold == 0)
                {
                    return Task.CompletedTask;
                }

                _held.Remove(0, hold);
                return base.StreamDeltaAsync(response, model, text[..hold]);
            default:
                return base.StreamDeltaAsync(response, model, delta);
        }
    }

    public override async Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs)
    {
        var called = _namedStarted;
        if (Tools is { Mode: ToolMode.Named } && !_namedStarted)
        {
            await StreamDeltaAsync(response, outcome.Model, "");
            called = true;
        }

        if (_held.Length > 0 && Tools is { } tools)
        {
            var (content, calls) = tools.Parse(_held.ToString());
            _held.Clear();
            if (content is { Length: > 0 })
            {
                await base.StreamDeltaAsync(response, outcome.Model, content);
            }

            for (var i = 0; i < calls.Count; i++)
            {
                var call = new ToolCallDelta(i, calls[i].Id, calls[i].Type, new FunctionCallDelta(calls[i].Function.Name, calls[i].Function.Arguments));
                await ServerSentEvents.WriteAsync(response, Chunk(outcome.Model, new ChunkDelta(null, null, [call]), null), Json, flush: false);
            }

            called |= calls.Count > 0;
        }

        await EndAsync(response, outcome, FinishReason(outcome, called));
    }

    private static string FinishReason(InferenceOutcome outcome, bool called) =>
        called && outcome.FinishReason == InferenceOutcome.Stop ? "tool_calls" : outcome.FinishReason;

    protected override object Chunk(string model, string? delta, string? finishReason) =>
        Chunk(model, new ChunkDelta(null, delta), finishReason);

    protected override object UsageChunk(string model, Usage usage) =>
        new ChatCompletionChunk(id, "chat.completion.chunk", created, model, [], usage, null);

    private ChatCompletionChunk Chunk(string model, ChunkDelta delta, string? finishReason) =>
        new(id, "chat.completion.chunk", created, model, [new ChunkChoice(0, delta, null, finishReason)], null, null);
}
