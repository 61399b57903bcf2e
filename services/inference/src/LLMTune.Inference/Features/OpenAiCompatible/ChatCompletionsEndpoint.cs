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
            new InferenceRequest(request.Model, "model", () => LocalInput(request, format), request.Stream == true, startedAt, new UpstreamRequest("chat/completions", body)),
            format);
    }

    /// <summary>One line of an OpenAI batch: the same request and answer, never streamed.</summary>
    internal static OpenAiBatchCall ForBatch(ReadOnlyMemory<byte> body, TimeProvider time)
    {
        var request = JsonBody.Parse<ChatCompletionRequest>(body, OpenAiJson.Options);
        var format = new ChatFormat("chatcmpl-" + Base62.Random(24), time.GetUtcNow().ToUnixTimeSeconds(), false, request.N ?? 1);
        return new OpenAiBatchCall(request.Model, () => LocalInput(request, format), format);
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
        if (request.TopLogprobs is not null && request.Logprobs != true)
        {
            throw ApiException.Invalid("top_logprobs", "top_logprobs needs logprobs: true.");
        }

        var sampling = OpenAiParameters.Sampling(
            new SamplingParameters(request.Temperature, request.TopP, maxTokens, maxTokensName, request.Stop, request.Seed, request.N,
                request.PresencePenalty, request.FrequencyPenalty, request.LogitBias, request.Logprobs == true ? request.TopLogprobs ?? 0 : null, "top_logprobs"),
            ParameterNames.OpenAiChat);
        format.Tools = tools;
        return sampling with
        {
            // One grammar for every choice; the engine gives each choice its own grammar sampler.
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
/// A <c>chat.completion</c>, or <c>chat.completion.chunk</c>s that open with the assistant role (once per choice). With
/// tools, calls come back as <c>tool_calls</c> (<c>finish_reason: "tool_calls"</c>), each choice parsed on its own;
/// streamed, a named call's arguments stream as they are decoded, while required and auto answers hold back what may be
/// a call until the end. Text held back that way streams without its log probabilities.
/// </summary>
internal sealed class ChatFormat(string id, long created, bool includeUsage, int choices) : OpenAiStreamFormat(includeUsage)
{
    private readonly Dictionary<int, StringBuilder> _held = [];
    private readonly HashSet<int> _namedStarted = [];

    /// <summary>Set once the request is known to run on a local model.</summary>
    public ToolPlan? Tools { get; set; }

    public override object Response(InferenceOutcome outcome, long latencyMs) =>
        new ChatCompletion(id, "chat.completion", created, outcome.Model, outcome.Choices.Select(Choice).ToArray(), Usage.From(outcome), null);

    private ChatChoice Choice(ChoiceOutcome choice)
    {
        var (content, calls) = Tools is { Mode: not ToolMode.None } tools ? tools.Parse(choice.Text) : (choice.Text, []);
        var message = new AssistantMessage("assistant", content ?? (calls.Count == 0 ? "" : null), null, calls.Count > 0 ? calls : null);
        return new ChatChoice(choice.Index, message, ChatLogprobs.From(choice.Logprobs), FinishReason(choice, calls.Count > 0));
    }

    public override async Task StreamStartAsync(HttpResponse response, string model)
    {
        for (var choice = 0; choice < choices; choice++)
        {
            await ServerSentEvents.WriteAsync(response, Chunk(model, choice, new ChunkDelta("assistant", ""), null, null), Json);
        }
    }

    public override Task StreamDeltaAsync(HttpResponse response, string model, ModelDelta delta)
    {
        switch (Tools?.Mode)
        {
            case ToolMode.Named:
                var first = _namedStarted.Add(delta.Choice);
                var call = new ToolCallDelta(0, first ? "call_" + Base62.Random(24) : null, first ? "function" : null,
                    new FunctionCallDelta(first ? Tools.NamedFunction : null, delta.Text));
                return ServerSentEvents.WriteAsync(response,
                    Chunk(model, delta.Choice, new ChunkDelta(null, null, [call]), delta.Logprob is { } logprob ? ChatLogprobs.From([logprob]) : null, null), Json, flush: false);
            case ToolMode.Required:
                Held(delta.Choice).Append(delta.Text);
                return Task.CompletedTask;
            case ToolMode.Auto:
                var held = Held(delta.Choice).Append(delta.Text);
                var text = held.ToString();
                var hold = ToolPlan.HoldFrom(text);
                if (hold == 0)
                {
                    return Task.CompletedTask;
                }

                held.Remove(0, hold);
                return base.StreamDeltaAsync(response, model, new ModelDelta(delta.Choice, text[..hold]));
            default:
                return base.StreamDeltaAsync(response, model, delta);
        }
    }

    public override async Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs)
    {
        var called = new HashSet<int>(_namedStarted);
        foreach (var choice in outcome.Choices)
        {
            if (Tools is { Mode: ToolMode.Named } && !_namedStarted.Contains(choice.Index))
            {
                await StreamDeltaAsync(response, outcome.Model, new ModelDelta(choice.Index, ""));
                called.Add(choice.Index);
            }

            if (Tools is { } tools && _held.TryGetValue(choice.Index, out var held) && held.Length > 0)
            {
                var (content, calls) = tools.Parse(held.ToString());
                held.Clear();
                if (content is { Length: > 0 })
                {
                    await base.StreamDeltaAsync(response, outcome.Model, new ModelDelta(choice.Index, content));
                }

                for (var i = 0; i < calls.Count; i++)
                {
                    var call = new ToolCallDelta(i, calls[i].Id, calls[i].Type, new FunctionCallDelta(calls[i].Function.Name, calls[i].Function.Arguments));
                    await ServerSentEvents.WriteAsync(response, Chunk(outcome.Model, choice.Index, new ChunkDelta(null, null, [call]), null, null), Json, flush: false);
                }

                if (calls.Count > 0)
                {
                    called.Add(choice.Index);
                }
            }
        }

        await EndAsync(response, outcome, choice => FinishReason(choice, called.Contains(choice.Index)));
    }

    private StringBuilder Held(int choice) =>
        _held.TryGetValue(choice, out var held) ? held : _held[choice] = new StringBuilder();

    private static string FinishReason(ChoiceOutcome choice, bool called) =>
        called && choice.FinishReason == InferenceOutcome.Stop ? "tool_calls" : choice.FinishReason;

    protected override object Chunk(string model, int choice, string? delta, Engine.Inference.TokenLogprob? logprob, string? finishReason) =>
        Chunk(model, choice, new ChunkDelta(null, delta), logprob is null ? null : ChatLogprobs.From([logprob]), finishReason);

    protected override object UsageChunk(string model, Usage usage) =>
        new ChatCompletionChunk(id, "chat.completion.chunk", created, model, [], usage, null);

    private ChatCompletionChunk Chunk(string model, int choice, ChunkDelta delta, ChatLogprobs? logprobs, string? finishReason) =>
        new(id, "chat.completion.chunk", created, model, [new ChunkChoice(choice, delta, logprobs, finishReason)], null, null);
}
