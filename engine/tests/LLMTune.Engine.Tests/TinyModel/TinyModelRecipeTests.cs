using System.Text;
using LLama;
using LLama.Common;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Tokenization;

namespace LLMTune.Engine.Tests.TinyModel;

public sealed class TinyModelRecipeTests
{
    // The real recipe with everything shrunk: a one-layer model, a small corpus and a handful of steps.
    private static TinyModelRecipeOptions Reduced(string outputPath) => new()
    {
        Seed = 5,
        OutputPath = outputPath,
        Threads = 1,
        Corpus = new TinyCorpusOptions { TrainingExamples = 600, HeldOutPerFamily = 3 },
        Tokenizer = new BpeTrainerOptions { VocabularySize = 320 },
        Shape = new TinyModelShape { EmbeddingLength = 32, Layers = 1, Heads = 2, KvHeads = 1, FeedForwardLength = 64, ContextLength = 128 },
        MaxSteps = 6,
        BatchSize = 2,
        SequenceLength = 64,
        WarmupSteps = 2,
        Evaluate = false,
        LossCurveInterval = 2,
    };

    [Fact]
    public async Task Reduced_recipe_builds_a_loadable_chatml_model_reproducibly()
    {
        var ct = TestContext.Current.CancellationToken;
        var folder = Directory.CreateTempSubdirectory("llmtune-tiny-recipe-").FullName;
        var firstPath = Path.Combine(folder, "a", "tiny.gguf");
        var secondPath = Path.Combine(folder, "b", "tiny.gguf");
        var reports = new List<RecipeProgress>();

        var first = await TinyModelRecipe.BuildAsync(Reduced(firstPath), new SynchronousProgress(reports.Add), ct);
        var second = await TinyModelRecipe.BuildAsync(Reduced(secondPath), null, ct);

        Assert.Equal(File.ReadAllBytes(firstPath), File.ReadAllBytes(secondPath));
        Assert.Equal(6, first.Steps);
        Assert.True(first.FinalEvalLoss < first.InitialEvalLoss, $"eval loss {first.InitialEvalLoss} -> {first.FinalEvalLoss}");
        Assert.Contains(first.LossCurve, p => p.Step == 6 && p.EvalLoss is not null);
        Assert.Contains(reports, r => r.Stage == "Training" && r.Step == 6);
        Assert.Equal(1.0, reports[^1].Fraction);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.Second.Fraction >= p.First.Fraction), "progress only moves forward");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(firstPath)!, "*.tmp"));

        var gguf = GgufFile.Read(firstPath);
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(TinyChatFormat.JinjaTemplate, gguf.Metadata.GetString("tokenizer.chat_template"));
        Assert.Equal("gpt2", gguf.Metadata.GetString("tokenizer.ggml.model"));
        Assert.Equal("gpt-2", gguf.Metadata.GetString("tokenizer.ggml.pre"));
        Assert.Equal(TinyModelRecipe.ModelName, gguf.Metadata.GetString("general.name"));

        // llama.cpp loads it, renders the stored template exactly as the model was trained, and generates.
        var parameters = new ModelParams(firstPath) { ContextSize = 128, Threads = 1 };
        using (var weights = LLamaWeights.LoadFromFile(parameters))
        {
            var template = new LLamaTemplate(weights) { AddAssistant = true };
            template.Add("user", "What is 2 plus 3?");
            Assert.Equal(TinyChatFormat.Prompt(null, "What is 2 plus 3?"), Encoding.UTF8.GetString(template.Apply()));
            Assert.Equal(first.VocabularySize, weights.Vocab.Count);
        }

        var corpus = TinyModelRecipe.GenerateCorpus(Reduced(firstPath));
        var report = await TinyModelEvaluation.RunAsync(firstPath,
            new TinyEvaluationOptions { Examples = corpus.HeldOut.Take(6).ToList(), Threads = 1, MaxAnswerTokens = 4 }, ct);
        Assert.Equal(6, report.Total);
    }

    [Fact]
    public async Task Cancelled_recipe_leaves_no_model()
    {
        var folder = Directory.CreateTempSubdirectory("llmtune-tiny-cancel-").FullName;
        var path = Path.Combine(folder, "tiny.gguf");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var progress = new SynchronousProgress(p =>
        {
            if (p.Stage == "Training" && p.Step >= 2)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TinyModelRecipe.BuildAsync(Reduced(path), progress, cts.Token));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(folder));
    }

    private sealed class SynchronousProgress(Action<RecipeProgress> report) : IProgress<RecipeProgress>
    {
        public void Report(RecipeProgress value) => report(value);
    }
}
