using System.Diagnostics;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tokenization;
using LLMTune.Engine.Training;

namespace LLMTune.Engine.TinyModel;

/// <summary>
/// Builds the bundled model from nothing: generates the corpus, learns a byte-level BPE vocabulary from it,
/// initialises a small llama model, pre-trains it with <see cref="LlamaTrainer"/> and writes a GGUF with the ChatML
/// template. Every stage is seeded, so the same options and thread count give a byte-identical file.
/// </summary>
public static class TinyModelRecipe
{
    public const string ModelName = "llmtune-tiny";

    // Shares of the progress bar per stage; training dominates the run time.
    private const double PrepareShare = 0.04;
    private const double TrainShare = 0.93;

    public static async Task<TinyModelBuildResult> BuildAsync(TinyModelRecipeOptions options, IProgress<RecipeProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var total = Stopwatch.StartNew();

        progress?.Report(new RecipeProgress("Generating corpus", 0));
        var corpus = GenerateCorpus(options);
        var texts = corpus.TrainingTurns.Select(t => TinyChatFormat.Prompt(t.System, t.Example.Prompt) + TinyChatFormat.Completion(t.Example.Answer));

        progress?.Report(new RecipeProgress("Learning tokenizer", PrepareShare * 0.25));
        var vocabulary = await Task.Run(() => BpeTrainer.Train(texts, options.Tokenizer, cancellationToken), cancellationToken).ConfigureAwait(false);
        var tokenizer = new BpeTokenizer(vocabulary);

        progress?.Report(new RecipeProgress("Tokenizing", PrepareShare * 0.6));
        var train = corpus.TrainingTurns.Select(t => ToExample(tokenizer, t.System, t.Example, options.MaskPrompts)).ToList();
        var eval = corpus.HeldOut.Select(e => ToExample(tokenizer, null, e, maskPrompt: true)).ToList();

        progress?.Report(new RecipeProgress("Initialising weights", PrepareShare * 0.8));
        var shape = options.Shape;
        var hyperparameters = new LlamaHyperparameters(
            VocabSize: vocabulary.Count,
            ContextLength: shape.ContextLength,
            EmbeddingLength: shape.EmbeddingLength,
            BlockCount: shape.Layers,
            HeadCount: shape.Heads,
            HeadCountKv: shape.KvHeads,
            FeedForwardLength: shape.FeedForwardLength,
            RopeFreqBase: shape.RopeFreqBase,
            RmsNormEpsilon: shape.RmsNormEpsilon);
        var weights = LlamaModelWeights.CreateRandom(hyperparameters, options.Seed, options.InitStd);
        var builder = new LlamaGgufBuilder(weights, vocabulary.ToGgufTokenizer())
        {
            Name = ModelName,
            ChatTemplate = TinyChatFormat.JinjaTemplate,
        };
        builder.ExtraMetadata.Set("general.license", "Apache-2.0");
        builder.ExtraMetadata.Set("general.description", "LLMTune's bundled tiny chat model, pre-trained from a synthetic corpus by `llmtune model build-tiny`.");
        builder.ExtraMetadata.Set("llmtune.recipe.seed", options.Seed);

        var outputPath = Path.GetFullPath(options.OutputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(outputPath)!);
        var initialPath = Path.Combine(Path.GetDirectoryName(outputPath)!, $".{Path.GetFileName(outputPath)}.init-{Guid.NewGuid():N}.tmp");
        var losses = new List<(int Step, float Loss)>();
        var evalLosses = new Dictionary<int, float>();
        TrainingResult trained;
        try
        {
            builder.Write(initialPath);
            var trainingOptions = new TrainingOptions
            {
                BaseModelPath = initialPath,
                OutputPath = outputPath,
                Mode = TrainingMode.Full,
                LearningRate = options.LearningRate,
                FinalLearningRateFraction = options.FinalLearningRateFraction,
                WarmupSteps = options.WarmupSteps,
                WeightDecay = options.WeightDecay,
                Epochs = options.Epochs,
                MaxSteps = options.MaxSteps,
                BatchSize = options.BatchSize,
                SequenceLength = options.SequenceLength,
                PackSequences = true,
                Threads = options.Threads,
                Seed = options.Seed,
                ModelName = ModelName,
            };
            var trainingProgress = new SynchronousProgress<TrainingProgress>(p =>
            {
                losses.Add((p.Step, p.Loss));
                if (p.EvalLoss is { } evalLoss)
                {
                    evalLosses[p.Step] = evalLoss;
                }
                progress?.Report(new RecipeProgress("Training", PrepareShare + TrainShare * p.Step / p.TotalSteps,
                    p.Step, p.TotalSteps, p.Loss, p.EvalLoss, p.TokensPerSecond));
            });
            trained = await new LlamaTrainer().TrainAsync(trainingOptions, train, eval, trainingProgress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(initialPath);
        }

        TinyEvaluationReport? report = null;
        if (options.Evaluate)
        {
            progress?.Report(new RecipeProgress("Evaluating", PrepareShare + TrainShare, trained.Steps, trained.Steps));
            report = await TinyModelEvaluation.RunAsync(outputPath, new TinyEvaluationOptions { Examples = corpus.HeldOut, Threads = options.Threads },
                cancellationToken).ConfigureAwait(false);
        }

        progress?.Report(new RecipeProgress("Done", 1, trained.Steps, trained.Steps, trained.FinalTrainLoss, trained.FinalEvalLoss, trained.TokensPerSecond));
        return new TinyModelBuildResult
        {
            OutputPath = outputPath,
            FileBytes = new FileInfo(outputPath).Length,
            Parameters = hyperparameters.ParameterCount(),
            VocabularySize = vocabulary.Count,
            TrainingExchanges = train.Count,
            Steps = trained.Steps,
            TrainedTokens = trained.TrainedTokens,
            TokensPerSecond = trained.TokensPerSecond,
            InitialEvalLoss = trained.InitialEvalLoss,
            FinalEvalLoss = trained.FinalEvalLoss,
            LossCurve = SummariseLosses(losses, evalLosses, options.LossCurveInterval),
            TrainingTime = trained.Duration,
            TotalTime = total.Elapsed,
            Evaluation = report,
        };
    }

    /// <summary>The corpus a recipe trains on (its seed is the recipe's seed); its held-out set is what the model is scored on.</summary>
    public static TinyCorpus GenerateCorpus(TinyModelRecipeOptions options) => TinyCorpus.Generate(options.Corpus with { Seed = options.Seed });

    /// <summary>The training example of one exchange: ChatML prompt (masked when asked) followed by the answer and <c>&lt;|im_end|&gt;</c>.</summary>
    public static TrainingExample ToExample(BpeTokenizer tokenizer, string? system, TinyExample example, bool maskPrompt)
    {
        var prompt = tokenizer.Encode(TinyChatFormat.Prompt(system, example.Prompt));
        var completion = tokenizer.Encode(TinyChatFormat.Completion(example.Answer));
        var tokens = new int[prompt.Count + completion.Count];
        prompt.CopyTo(tokens);
        completion.CopyTo(tokens, prompt.Count);
        // Position 0 is never a target anyway; prompt length 1 trains on everything after the first token.
        return new TrainingExample(tokens, maskPrompt ? prompt.Count : 1);
    }

    private static List<LossPoint> SummariseLosses(List<(int Step, float Loss)> losses, Dictionary<int, float> evalLosses, int interval)
    {
        var points = new List<LossPoint>();
        if (losses.Count == 0)
        {
            return points;
        }
        interval = Math.Max(1, interval);
        var marks = new SortedSet<int>(evalLosses.Keys) { losses[0].Step, losses[^1].Step };
        for (var step = interval; step < losses[^1].Step; step += interval)
        {
            marks.Add(step);
        }
        foreach (var mark in marks)
        {
            // Single steps are noisy: report the mean over the window that ends at the mark.
            var window = losses.Where(l => l.Step <= mark && l.Step > mark - Math.Min(interval, 50)).Select(l => l.Loss).ToList();
            points.Add(new LossPoint(mark, window.Count > 0 ? window.Average() : float.NaN, evalLosses.TryGetValue(mark, out var e) ? e : null));
        }
        return points;
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool and reorder reports).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
