using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LLMTune.Engine.TinyModel;

/// <summary>Exact-match accuracy of one corpus family.</summary>
public sealed record FamilyAccuracy(string Family, int Correct, int Total)
{
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;
}

/// <summary>One evaluated prompt with what the model answered.</summary>
public sealed record EvaluatedAnswer(TinyExample Example, string Generated, bool Correct);

/// <summary>Per-family and overall exact-match accuracy of a model on a set of exchanges.</summary>
public sealed record TinyEvaluationReport(IReadOnlyList<FamilyAccuracy> Families, IReadOnlyList<EvaluatedAnswer> Answers)
{
    public int Correct => Families.Sum(f => f.Correct);
    public int Total => Families.Sum(f => f.Total);
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;

    public string Format()
    {
        var builder = new StringBuilder();
        foreach (var family in Families)
        {
            builder.AppendLine(System.Globalization.CultureInfo.InvariantCulture,
                $"{family.Family,-14} {family.Correct,4}/{family.Total,-4} {family.Accuracy,7:P1}");
        }
        builder.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"{"overall",-14} {Correct,4}/{Total,-4} {Accuracy,7:P1}");
        return builder.ToString();
    }
}

public sealed record TinyEvaluationOptions
{
    /// <summary>The recipe whose held-out set is evaluated; the default recipe when null.</summary>
    public TinyModelRecipeOptions? Recipe { get; init; }

    /// <summary>Exchanges to evaluate instead of the corpus's held-out set.</summary>
    public IReadOnlyList<TinyExample>? Examples { get; init; }

    public int MaxAnswerTokens { get; init; } = 32;
    public int Threads { get; init; } = 2;
}

/// <summary>
/// Answers prompts with greedy decoding through llama.cpp (LLamaSharp), the prompt rendered by the chat template stored
/// in the GGUF, and scores exact matches of the trimmed answer per family.
/// </summary>
public static class TinyModelEvaluation
{
    public static Task<TinyEvaluationReport> RunAsync(string modelPath, TinyEvaluationOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new TinyEvaluationOptions();
        var examples = options.Examples ?? TinyModelRecipe.GenerateCorpus(options.Recipe ?? new TinyModelRecipeOptions()).HeldOut;
        // LLamaSharp's calls are synchronous native work; run them off the caller's thread.
        return Task.Run(() => Evaluate(modelPath, examples, options, cancellationToken), cancellationToken);
    }

    private static TinyEvaluationReport Evaluate(string modelPath, IReadOnlyList<TinyExample> examples, TinyEvaluationOptions options, CancellationToken cancellationToken)
    {
        var parameters = new ModelParams(modelPath)
        {
            ContextSize = 256,
            BatchSize = 256,
            Threads = options.Threads,
            GpuLayerCount = 0,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var vocab = weights.NativeHandle.Vocab;
        var batch = new LLamaBatch();
        var answers = new List<EvaluatedAnswer>(examples.Count);
        var pieceBuffer = new byte[64];

        foreach (var example in examples)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var template = new LLamaTemplate(weights) { AddAssistant = true };
            template.Add("user", example.Prompt);
            var prompt = Encoding.UTF8.GetString(template.Apply());
            var tokens = weights.NativeHandle.Tokenize(prompt, vocab.ShouldAddBOS, true, Encoding.UTF8);

            context.NativeHandle.MemoryClear(true);
            batch.Clear();
            for (var i = 0; i < tokens.Length; i++)
            {
                batch.Add(tokens[i], i, LLamaSeqId.Zero, i == tokens.Length - 1);
            }
            var position = tokens.Length;
            var generated = new List<byte>();
            for (var step = 0; step < options.MaxAnswerTokens && position < parameters.ContextSize; step++)
            {
                if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
                {
                    throw new InvalidOperationException($"llama.cpp could not decode the prompt '{example.Prompt}'.");
                }
                var next = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
                if (next.IsEndOfGeneration(vocab) || next.IsControl(vocab))
                {
                    break;
                }
                var length = weights.NativeHandle.TokenToSpan(next, pieceBuffer, 0, false);
                generated.AddRange(pieceBuffer.AsSpan(0, (int)length).ToArray());
                batch.Clear();
                batch.Add(next, position++, LLamaSeqId.Zero, true);
            }
            var text = Encoding.UTF8.GetString(generated.ToArray()).Trim();
            answers.Add(new EvaluatedAnswer(example, text, string.Equals(text, example.Answer, StringComparison.Ordinal)));
        }

        var families = answers
            .GroupBy(a => a.Example.Family)
            .Select(g => new FamilyAccuracy(g.Key, g.Count(a => a.Correct), g.Count()))
            .ToList();
        return new TinyEvaluationReport(families, answers);
    }

    // Greedy decoding; ties go to the lowest id so the result does not depend on a sampler's ordering.
    private static LLamaToken ArgMax(Span<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }
        return (LLamaToken)best;
    }
}
