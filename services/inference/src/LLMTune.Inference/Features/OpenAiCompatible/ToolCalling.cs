using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.StructuredOutput;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>How a local model answers <c>tool_choice</c>.</summary>
internal enum ToolMode
{
    /// <summary>Plain text (<c>none</c>, or no tools).</summary>
    None,

    /// <summary>
    /// Free text; <c>&lt;tool_call&gt;</c> blocks the model writes become calls when their arguments validate against
    /// the function's parameters schema (anything else stays text).
    /// </summary>
    Auto,

    /// <summary>Decoded under a grammar: one or more <c>{"name", "arguments"}</c> lines.</summary>
    Required,

    /// <summary>Decoded under the named function's parameters schema: the text is the arguments object.</summary>
    Named,
}

/// <summary>
/// <c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c> for local models: validation, the grammar for forced
/// calls, the prompt text (history and, for templates with a Hermes-style tool format, the tool definitions) and turning
/// the generated text back into <c>tool_calls</c>.
/// </summary>
internal sealed partial class ToolPlan
{
    public const int MaxTools = 128;
    public const int MaxParallelCalls = 4;
    private const string CallOpen = "<tool_call>";
    private const string CallClose = "</tool_call>";

    private ToolPlan(ToolMode mode, IReadOnlyList<FunctionIn> functions, string? named, bool parallel)
    {
        Mode = mode;
        Functions = functions;
        NamedFunction = named;
        Parallel = parallel;
    }

    public ToolMode Mode { get; }

    public IReadOnlyList<FunctionIn> Functions { get; }

    /// <summary>The function <c>tool_choice</c> names (<see cref="ToolMode.Named"/>).</summary>
    public string? NamedFunction { get; }

    public bool Parallel { get; }

    // Built on first use: most answers call nothing.
    private readonly Dictionary<string, JsonSchema?> _schemas = new(StringComparer.Ordinal);

    /// <summary>Validates the request's tool parameters; null when it has no tools and no choice to make.</summary>
    public static ToolPlan? From(ChatCompletionRequest request)
    {
        var functions = ParseFunctions(request.Tools);
        var (mode, named) = Choice(request.ToolChoice, functions);
        if (functions.Count == 0 && mode == ToolMode.None)
        {
            return null;
        }

        return new ToolPlan(mode, functions, named, request.ParallelToolCalls ?? true);
    }

    private static List<FunctionIn> ParseFunctions(List<ToolIn?>? tools)
    {
        if (tools is null)
        {
            return [];
        }

        if (tools.Count > MaxTools)
        {
            throw ApiException.Invalid("tools", $"tools may list at most {MaxTools} functions.");
        }

        var functions = new List<FunctionIn>(tools.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tools.Count; i++)
        {
            var tool = tools[i] ?? throw ApiException.Invalid($"tools[{i}]", $"tools[{i}] must be an object.");
            if (tool.Type != "function")
            {
                throw ApiException.Unsupported($"tools[{i}].type", "Only tools of type 'function' are supported by this server.");
            }

            var function = tool.Function ?? throw ApiException.Invalid($"tools[{i}].function", $"tools[{i}].function is required.");
            if (function.Name is null || !NamePattern().IsMatch(function.Name))
            {
                throw ApiException.Invalid($"tools[{i}].function.name", "A function name is 1–64 letters, digits, underscores or dashes.");
            }

            if (!names.Add(function.Name))
            {
                throw ApiException.Invalid($"tools[{i}].function.name", $"The function name '{function.Name}' is listed twice.");
            }

            if (function.Parameters is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
            {
                throw ApiException.Invalid($"tools[{i}].function.parameters", "parameters must be a JSON schema object.");
            }

            functions.Add(function);
        }

        return functions;
    }

    private static (ToolMode Mode, string? Named) Choice(JsonElement? choice, List<FunctionIn> functions)
    {
        switch (choice)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return (functions.Count > 0 ? ToolMode.Auto : ToolMode.None, null);
            case { ValueKind: JsonValueKind.String } text:
                var mode = text.GetString() switch
                {
                    "none" => ToolMode.None,
                    "auto" => ToolMode.Auto,
                    "required" => ToolMode.Required,
                    _ => throw ApiException.Invalid("tool_choice", "tool_choice must be none, auto, required or a named function."),
                };
                if (mode != ToolMode.None && functions.Count == 0)
                {
                    throw ApiException.Invalid("tool_choice", "tool_choice needs tools to choose from.");
                }

                return (mode, null);
            case { ValueKind: JsonValueKind.Object } named
                when named.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "function"
                    && named.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
                    && function.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String:
                var chosen = name.GetString()!;
                if (!functions.Any(f => f.Name == chosen))
                {
                    throw ApiException.Invalid("tool_choice.function.name", $"tool_choice names '{chosen}', which is not in tools.");
                }

                return (ToolMode.Named, chosen);
            default:
                throw ApiException.Invalid("tool_choice", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}.");
        }
    }

    /// <summary>The grammar forced calls are decoded under; null when the model writes freely.</summary>
    public string? Grammar() => Mode switch
    {
        ToolMode.Named => Functions.Single(f => f.Name == NamedFunction) is { Parameters: { ValueKind: JsonValueKind.Object } schema }
            ? JsonSchemaGrammar.FromSchema(schema, $"tools[{IndexOf(NamedFunction!)}].function.parameters")
            : "root ::= \"{\" \"}\"\n",
        ToolMode.Required => JsonSchemaGrammar.ToolCalls(
            Functions.Select((f, i) => (f.Name!, f.Parameters is { ValueKind: JsonValueKind.Object } p ? p : (JsonElement?)null, $"tools[{i}].function.parameters")).ToList(),
            Parallel ? MaxParallelCalls : 1),
        _ => null,
    };

    private int IndexOf(string name) => Functions.Select((f, i) => (f, i)).First(x => x.f.Name == name).i;

    /// <summary>
    /// The tool definitions as a system-prompt section in the Hermes format (Qwen 2.5, Hermes and other ChatML tool
    /// models), for models whose chat template uses <c>&lt;tool_call&gt;</c>; other templates get none.
    /// </summary>
    public string? SystemPrompt()
    {
        if (Mode == ToolMode.None)
        {
            return null;
        }

        var text = new StringBuilder("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
            .Append("You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        foreach (var function in Functions)
        {
            text.Append('\n').Append(JsonSerializer.Serialize(new { type = "function", function }, OpenAiJson.Options));
        }

        return text.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n")
            .Append("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>").ToString();
    }

    /// <summary>The input for <paramref name="model"/>: tool definitions go into the prompt of local models whose template has a tool format.</summary>
    public static InferenceInput ForModel(ServedModel model, InferenceInput input) =>
        input.ToolPrompt is { } tools && model is LocalServedModel local && input.Generation.Messages is { } messages
            ? input with { Generation = input.Generation with { Messages = WithToolPrompt(messages, tools, local.Model.ChatTemplate) } }
            : input;

    /// <summary>Adds <paramref name="tools"/> to the system message (or a new first one) when the template has the Hermes tool format.</summary>
    public static IReadOnlyList<ChatMessage> WithToolPrompt(IReadOnlyList<ChatMessage> messages, string tools, string? chatTemplate)
    {
        if (chatTemplate is null || !chatTemplate.Contains(CallOpen, StringComparison.Ordinal))
        {
            return messages;
        }

        if (messages is [{ Role: ChatRole.System } system, ..])
        {
            return [ChatMessage.System(system.Content + "\n\n" + tools), .. messages.Skip(1)];
        }

        return [ChatMessage.System(tools), .. messages];
    }

    /// <summary>An assistant turn that called tools, as the model would have written it.</summary>
    public static string RenderCalls(string? content, List<ToolCallIn?> calls, int messageIndex)
    {
        var text = new StringBuilder(content);
        for (var i = 0; i < calls.Count; i++)
        {
            var param = $"messages[{messageIndex}].tool_calls[{i}]";
            var call = calls[i] ?? throw ApiException.Invalid(param, $"{param} must be an object.");
            if (call.Function is not { Name: { Length: > 0 } name } function)
            {
                throw ApiException.Invalid($"{param}.function.name", $"{param}.function.name is required.");
            }

            var arguments = function.Arguments is { Length: > 0 } json && IsJson(json) ? json : "{}";
            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(CallOpen).Append('\n')
                .Append("{\"name\": ").Append(JsonSerializer.Serialize(name)).Append(", \"arguments\": ").Append(arguments).Append("}\n")
                .Append(CallClose);
        }

        return text.ToString();
    }

    /// <summary>A tool's result, as a user turn in the Hermes format (what Qwen's own template renders).</summary>
    public static ChatMessage RenderResult(string content) => ChatMessage.User($"<tool_response>\n{content}\n</tool_response>");

    /// <summary>
    /// The calls in a finished generation, and the text that is not part of one. Forced calls (named, required) are
    /// the whole text; in auto mode, well-formed <c>&lt;tool_call&gt;</c> blocks naming a listed function.
    /// </summary>
    public (string? Content, List<ToolCall> Calls) Parse(string text)
    {
        var calls = new List<ToolCall>();
        switch (Mode)
        {
            case ToolMode.Named:
                calls.Add(NewCall(NamedFunction!, text));
                return (null, calls);
            case ToolMode.Required:
                foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (ParseCall(line) is { } call)
                    {
                        calls.Add(call);
                    }
                }

                return calls.Count > 0 ? (null, calls) : (text, calls);
            case ToolMode.Auto:
                var rest = new StringBuilder();
                var at = 0;
                while (text.IndexOf(CallOpen, at, StringComparison.Ordinal) is var open and >= 0
                    && text.IndexOf(CallClose, open, StringComparison.Ordinal) is var close and >= 0
                    && (Parallel || calls.Count == 0))
                {
                    var body = text[(open + CallOpen.Length)..close];
                    if (ParseCall(body) is { } call)
                    {
                        rest.Append(text, at, open - at);
                        calls.Add(call);
                    }
                    else
                    {
                        rest.Append(text, at, close + CallClose.Length - at);
                    }

                    at = close + CallClose.Length;
                }

                if (calls.Count == 0)
                {
                    return (text, calls);
                }

                rest.Append(text, at, text.Length - at);
                var content = rest.ToString().Trim();
                return (content.Length > 0 ? content : null, calls);
            default:
                return (text, calls);
        }
    }

    /// <summary>Where a streamed auto answer may start a call: text from here on is held back until the end.</summary>
    public static int HoldFrom(string text)
    {
        var open = text.IndexOf(CallOpen, StringComparison.Ordinal);
        if (open >= 0)
        {
            return open;
        }

        // A trailing prefix of "<tool_call>" may become one.
        for (var length = Math.Min(CallOpen.Length - 1, text.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(CallOpen.AsSpan(0, length)))
            {
                return text.Length - length;
            }
        }

        return text.Length;
    }

    private ToolCall? ParseCall(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                && Functions.Any(f => f.Name == name.GetString())
                && (!root.TryGetProperty("arguments", out var arguments) || arguments.ValueKind == JsonValueKind.Object))
            {
                using var empty = JsonDocument.Parse("{}");
                var args = root.TryGetProperty("arguments", out var given) ? given : empty.RootElement;
                return ArgumentsValid(name.GetString()!, args) ? NewCall(name.GetString()!, args.GetRawText()) : null;
            }
        }
        catch (JsonException)
        {
            // Not a call: it stays text.
        }

        return null;
    }

    /// <summary>
    /// Whether <paramref name="arguments"/> match the function's parameters schema. Forced calls are decoded under it;
    /// a call the model writes freely (auto) is checked here, so a returned call always has valid arguments. A schema
    /// that cannot be evaluated (an unresolvable <c>$ref</c>, …) accepts nothing.
    /// </summary>
    private bool ArgumentsValid(string function, JsonElement arguments)
    {
        if (!_schemas.TryGetValue(function, out var schema))
        {
            var parameters = Functions.First(f => f.Name == function).Parameters;
            try
            {
                schema = parameters is { ValueKind: JsonValueKind.Object } p
                    ? JsonSchema.FromText(p.GetRawText(), new BuildOptions { SchemaRegistry = new SchemaRegistry() })
                    : null;
            }
            catch (Exception e) when (e is JsonSchemaException or JsonException or ArgumentException or InvalidOperationException)
            {
                schema = JsonSchema.False;
            }

            _schemas[function] = schema;
        }

        try
        {
            return schema is null || schema.Evaluate(arguments).IsValid;
        }
        catch (Exception e) when (e is JsonSchemaException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    public static ToolCall NewCall(string name, string arguments) => new("call_" + Base62.Random(24), "function", new FunctionCall(name, arguments));

    private static bool IsJson(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();
}
