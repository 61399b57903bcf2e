using System.Text;
using LLMTune.Engine.Inference;

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
/// Answers prompts with greedy decoding through the engine's inference (llama.cpp via LLamaSharp), the prompt rendered by
/// the chat template stored in the GGUF, and scores exact matches of the trimmed answer per family.
/// </summary>
public static class TinyModelEvaluation
{
    public static Task<TinyEvaluationReport> RunAsync(string modelPath, TinyEvaluationOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new TinyEvaluationOptions();
        var examples = options.Examples ?? TinyModelRecipe.GenerateCorpus(options.Recipe ?? new TinyModelRecipeOptions()).HeldOut;
        return EvaluateAsync(modelPath, examples, options, cancellationToken);
    }

    private static async Task<TinyEvaluationReport> EvaluateAsync(string modelPath, IReadOnlyList<TinyExample> examples, TinyEvaluationOptions options,
        CancellationToken cancellationToken)
    {
        // The engine's own inference path, as the served model uses it; one sequence at a time so the greedy
        // answers do not depend on how requests happen to be batched together.
        await using var manager = new ModelManager();
        var model = await manager.LoadAsync("llmtune-tiny-evaluation", new ModelLoadOptions
        {
            Path = modelPath,
            ContextLength = 256,
            Threads = options.Threads,
            MaxConcurrentSequences = 1,
        }, cancellationToken).ConfigureAwait(false);

        var answers = new List<EvaluatedAnswer>(examples.Count);
        foreach (var example in examples)
        {
            var result = await model.CompleteAsync(new GenerationRequest
            {
                Messages = [ChatMessage.User(example.Prompt)],
                Temperature = 0,
                MaxTokens = options.MaxAnswerTokens,
            }, cancellationToken).ConfigureAwait(false);
            var text = result.Text.Trim();
            answers.Add(new EvaluatedAnswer(example, text, string.Equals(text, example.Answer, StringComparison.Ordinal)));
        }

        var families = answers
            .GroupBy(a => a.Example.Family)
            .Select(g => new FamilyAccuracy(g.Key, g.Count(a => a.Correct), g.Count()))
            .ToList();
        return new TinyEvaluationReport(families, answers);
    }
}
