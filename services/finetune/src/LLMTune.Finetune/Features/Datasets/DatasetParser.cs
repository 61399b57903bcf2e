using System.Text;
using System.Text.Json;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>Why a dataset cannot be used; <see cref="Code"/> is the job's error code, the message names what to fix.</summary>
public sealed class DatasetException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public const string ValidationFailed = "validation_failed";
    public const string Unavailable = "dataset_unavailable";
    public const string TooLarge = "dataset_too_large";
    public const string NotAllowed = "dataset_not_allowed";

    public string Code { get; } = code;
}

public sealed record ChatTurn(string Role, string Content);

/// <summary>One line of a dataset: a conversation, or a prompt with its completion (a one-exchange conversation).</summary>
public sealed record TextExample(int Line, IReadOnlyList<ChatTurn>? Messages, string? Prompt, string? Completion);

/// <summary>
/// Reads JSONL fine-tuning data. Each non-blank line is <c>{"messages": [{"role": ..., "content": ...}, ...]}</c>
/// (roles system, user, assistant; at least one non-empty assistant turn) or <c>{"prompt": ..., "completion": ...}</c>.
/// Problems are reported by line number.
/// </summary>
public static class DatasetParser
{
    private static readonly string[] Roles = ["system", "user", "assistant"];
    private const int MaxReportedProblems = 5;

    public static IReadOnlyList<TextExample> Parse(Stream utf8Jsonl)
    {
        var examples = new List<TextExample>();
        var problems = new List<string>();
        var problemCount = 0;
        using var reader = new StreamReader(utf8Jsonl, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false);
        var lineNumber = 0;
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (DecoderFallbackException)
            {
                throw new DatasetException(DatasetException.ValidationFailed, $"Line {lineNumber + 1}: the file is not valid UTF-8 text.");
            }

            if (line is null)
            {
                break;
            }

            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var problem = TryParseLine(lineNumber, line.TrimStart('\uFEFF'), out var example);
            if (problem is null)
            {
                examples.Add(example!);
            }
            else if (++problemCount <= MaxReportedProblems)
            {
                problems.Add($"line {lineNumber}: {problem}");
            }
        }

        if (problemCount > 0)
        {
            var more = problemCount > MaxReportedProblems ? $" (and {problemCount - MaxReportedProblems} more lines)" : "";
            throw new DatasetException(DatasetException.ValidationFailed, $"The dataset has invalid lines: {string.Join("; ", problems)}{more}.");
        }

        if (examples.Count == 0)
        {
            throw new DatasetException(DatasetException.ValidationFailed, "The dataset is empty: it needs JSONL lines with \"messages\" or \"prompt\"/\"completion\".");
        }

        return examples;
    }

    private static string? TryParseLine(int lineNumber, string line, out TextExample? example)
    {
        example = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            return $"not valid JSON ({e.Message.Split(" Path:")[0].TrimEnd('.')})";
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "expected a JSON object";
            }

            if (root.TryGetProperty("messages", out var messages))
            {
                return ParseMessages(lineNumber, messages, out example);
            }

            var hasPrompt = root.TryGetProperty("prompt", out var prompt);
            var hasCompletion = root.TryGetProperty("completion", out var completion);
            if (!hasPrompt && !hasCompletion)
            {
                return "expected \"messages\" or \"prompt\" and \"completion\"";
            }

            if (!hasPrompt || prompt.ValueKind != JsonValueKind.String)
            {
                return "\"prompt\" must be a string";
            }

            if (!hasCompletion || completion.ValueKind != JsonValueKind.String || completion.GetString()!.Length == 0)
            {
                return "\"completion\" must be a non-empty string";
            }

            example = new TextExample(lineNumber, null, prompt.GetString()!, completion.GetString()!);
            return null;
        }
    }

    private static string? ParseMessages(int lineNumber, JsonElement messages, out TextExample? example)
    {
        example = null;
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            return "\"messages\" must be a non-empty array";
        }

        var turns = new List<ChatTurn>();
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
            {
                return $"messages[{index}] must be an object";
            }

            if (!message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String || !Roles.Contains(role.GetString()))
            {
                return $"messages[{index}].role must be one of {string.Join(", ", Roles)}";
            }

            if (!message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
            {
                return $"messages[{index}].content must be a string";
            }

            turns.Add(new ChatTurn(role.GetString()!, content.GetString()!));
            index++;
        }

        if (!turns.Any(t => t.Role == "assistant" && t.Content.Length > 0))
        {
            return "no non-empty assistant message to learn from";
        }

        example = new TextExample(lineNumber, turns, null, null);
        return null;
    }
}
