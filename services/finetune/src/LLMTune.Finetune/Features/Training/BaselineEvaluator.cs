using LLMTune.Engine.Training;

namespace LLMTune.Finetune.Features.Training;

/// <summary>
/// The held-out loss of the untouched base model, with the training graph's own forward pass and the trainer's
/// definition of the loss (mean cross-entropy over trained target tokens), so the job shows where training starts.
/// </summary>
public static class BaselineEvaluator
{
    public static double Evaluate(string modelPath, IReadOnlyList<TrainingExample> eval, int sequenceLength, int threads, CancellationToken ct)
    {
        double total = 0;
        long targets = 0;
        foreach (var example in eval)
        {
            ct.ThrowIfCancellationRequested();
            var length = Math.Min(example.Tokens.Count, sequenceLength);
            if (length < 2)
            {
                continue;
            }

            var tokens = example.Tokens.Take(length).ToArray();
            var logits = LlamaTrainer.ComputeLogits(modelPath, tokens, threads);
            for (var i = 0; i + 1 < length; i++)
            {
                if (!example.IsTrained(i + 1))
                {
                    continue;
                }

                total += CrossEntropy(logits[i], tokens[i + 1]);
                targets++;
            }
        }

        return targets == 0 ? double.NaN : total / targets;
    }

    private static double CrossEntropy(float[] logits, int target)
    {
        var max = logits.Max();
        double sum = 0;
        foreach (var logit in logits)
        {
            sum += Math.Exp(logit - max);
        }

        return Math.Log(sum) + max - logits[target];
    }
}
