using System.Collections.Concurrent;
using System.Text;
using LLama;
using LLama.Common;
using LLMTune.Engine.Inference;
using LLMTune.Engine.Training;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>
/// Turns text examples into training tokens with the base model's own llama.cpp vocabulary and chat template, exactly
/// as the inference service will tokenize prompts, so training tokens equal inference tokens. Only assistant
/// content (and its end-of-turn token) is trained; prompts, system and user turns are context.
/// </summary>
public sealed class DatasetTokenizer : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<LLamaWeights>> _vocabularies = new(StringComparer.Ordinal);

    /// <summary>Tokenizes every example; examples whose trained tokens all fall outside the window are dropped.</summary>
    public IReadOnlyList<TrainingExample> Tokenize(string baseModelPath, IReadOnlyList<TextExample> examples, int sequenceLength)
    {
        var weights = Vocabulary(baseModelPath);
        var template = weights.Metadata.TryGetValue("tokenizer.chat_template", out var t) && !string.IsNullOrEmpty(t) ? t : null;
        var result = new List<TrainingExample>(examples.Count);
        foreach (var example in examples)
        {
            var (tokens, mask) = template is null && example.Messages is null
                ? Raw(weights, example.Prompt!, example.Completion!)
                : Chat(weights, template ?? ChatPromptFormatter.ChatMl, example.Messages ?? [new ChatTurn("user", example.Prompt!), new ChatTurn("assistant", example.Completion!)], example.Line);
            if (mask.Take(sequenceLength).Skip(1).Any(trained => trained))
            {
                result.Add(new TrainingExample(tokens, lossMask: mask));
            }
        }

        if (result.Count == 0)
        {
            throw new DatasetException(DatasetException.ValidationFailed,
                $"No example has completion tokens within the {sequenceLength}-token training window: shorten the prompts.");
        }

        return result;
    }

    /// <summary>Without a chat template: the prompt as is, then the completion and end-of-sequence (trained).</summary>
    private static (int[] Tokens, bool[] Mask) Raw(LLamaWeights weights, string prompt, string completion)
    {
        var promptTokens = Encode(weights, prompt, weights.Vocab.ShouldAddBOS);
        var completionTokens = Encode(weights, completion, false).ToList();
        if (weights.Vocab.EOS is { } eos)
        {
            completionTokens.Add((int)eos);
        }

        return ([.. promptTokens, .. completionTokens], [.. promptTokens.Select(_ => false), .. completionTokens.Select(_ => true)]);
    }

    /// <summary>
    /// Renders growing prefixes of the conversation with the template and tokenizes the differences, so each piece
    /// is known to be context (template text, system/user turns, the assistant header) or trained (assistant content).
    /// </summary>
    private static (int[] Tokens, bool[] Mask) Chat(LLamaWeights weights, string template, IReadOnlyList<ChatTurn> turns, int line)
    {
        var tokens = new List<int>();
        var mask = new List<bool>();
        var rendered = "";
        var endOfTurn = weights.Vocab.EOT ?? weights.Vocab.EOS;
        for (var k = 0; k < turns.Count; k++)
        {
            var full = Render(template, turns, k + 1, addAssistant: false);
            if (turns[k].Role == "assistant")
            {
                var header = Render(template, turns, k, addAssistant: true);
                Append(weights, tokens, mask, Difference(rendered, header, line), trained: false);
                var answer = Encode(weights, Difference(header, full, line), false);
                // Train on the content and its end-of-turn token; whatever the template writes after it is context.
                var end = endOfTurn is { } eot ? Array.LastIndexOf(answer, (int)eot) : -1;
                for (var i = 0; i < answer.Length; i++)
                {
                    tokens.Add(answer[i]);
                    mask.Add(end < 0 || i <= end);
                }
            }
            else
            {
                Append(weights, tokens, mask, Difference(rendered, full, line), trained: false);
            }

            rendered = full;
        }

        if (tokens.Count > 0 && weights.Vocab.ShouldAddBOS && weights.Vocab.BOS is { } bos && tokens[0] != (int)bos)
        {
            tokens.Insert(0, (int)bos);
            mask.Insert(0, false);
        }

        return (tokens.ToArray(), mask.ToArray());
    }

    private static void Append(LLamaWeights weights, List<int> tokens, List<bool> mask, string text, bool trained)
    {
        foreach (var token in Encode(weights, text, false))
        {
            tokens.Add(token);
            mask.Add(trained);
        }
    }

    private static string Difference(string prefix, string text, int line) =>
        text.StartsWith(prefix, StringComparison.Ordinal)
            ? text[prefix.Length..]
            : throw new DatasetException(DatasetException.ValidationFailed,
                $"line {line}: the base model's chat template does not render this conversation incrementally; use prompt/completion lines.");

    private static string Render(string template, IReadOnlyList<ChatTurn> turns, int count, bool addAssistant)
    {
        if (count == 0)
        {
            return addAssistant ? RenderWith(template, [], true) : "";
        }

        return RenderWith(template, turns.Take(count), addAssistant);
    }

    private static string RenderWith(string template, IEnumerable<ChatTurn> turns, bool addAssistant)
    {
        var rendered = new LLamaTemplate(template) { AddAssistant = addAssistant };
        foreach (var turn in turns)
        {
            rendered.Add(turn.Role, turn.Content);
        }

        return Encoding.UTF8.GetString(rendered.Apply());
    }

    private static int[] Encode(LLamaWeights weights, string text, bool addBos) =>
        text.Length == 0 ? [] : Array.ConvertAll(weights.Tokenize(text, addBos, special: true, Encoding.UTF8), t => (int)t);

    private LLamaWeights Vocabulary(string path) =>
        _vocabularies.GetOrAdd(path, p => new Lazy<LLamaWeights>(() => LoadVocabulary(p))).Value;

    private static LLamaWeights LoadVocabulary(string path)
    {
        if (!File.Exists(path))
        {
            throw new DatasetException(DatasetException.Unavailable, "The base model's file is missing on this server.");
        }

        // The vocabulary alone: no tensors are read, so this is cheap even for large models.
        return LLamaWeights.LoadFromFile(new ModelParams(path) { VocabOnly = true, GpuLayerCount = 0 });
    }

    public void Dispose()
    {
        foreach (var vocabulary in _vocabularies.Values.Where(v => v.IsValueCreated))
        {
            vocabulary.Value.Dispose();
        }
    }
}
