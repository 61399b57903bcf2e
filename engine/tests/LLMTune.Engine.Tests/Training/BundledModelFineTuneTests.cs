using System.Diagnostics;
using System.Globalization;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

/// <summary>
/// Fine-tunes the bundled model on a task it never saw ("Say W twice." -> "W W"), LoRA and full, each within
/// two minutes, and checks that eval loss on held-out words drops by at least 30% and that greedy answers
/// served by llama.cpp move toward the task.
/// </summary>
public sealed class BundledModelFineTuneTests
{
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(2);

    private static readonly string[] Words =
    [
        "apple", "river", "stone", "cloud", "green", "table", "chair", "light", "music", "paper",
        "water", "bread", "horse", "tiger", "plant", "glass", "smile", "dream", "storm", "beach",
        "candle", "garden", "window", "forest", "silver", "rocket", "planet", "island", "bridge", "pencil",
        "mirror", "winter", "summer", "spring", "autumn", "castle", "dragon", "button", "basket", "ladder",
        "pepper", "butter", "cotton", "marble", "copper", "hammer", "needle", "rabbit", "turtle", "parrot",
        "orange", "purple", "yellow", "little", "simple", "gentle", "bright", "quiet", "happy", "funny",
        "ocean", "desert", "valley", "meadow", "canyon", "harbor", "market", "school", "doctor", "farmer",
        "sailor", "singer", "writer", "artist", "player", "driver", "baker", "hunter", "dancer", "painter",
        "wheel", "train", "plane", "truck", "boat", "road", "street", "house", "tower", "field",
    ];

    [Fact]
    public Task Lora_fine_tune_of_the_bundled_model_lowers_eval_loss_by_30_percent_within_two_minutes() =>
        FineTuneBundledModel(TrainingMode.Lora, learningRate: 1e-2f);

    [Fact]
    public Task Full_fine_tune_of_the_bundled_model_lowers_eval_loss_by_30_percent_within_two_minutes() =>
        FineTuneBundledModel(TrainingMode.Full, learningRate: 2e-3f);

    private static async Task FineTuneBundledModel(TrainingMode mode, float learningRate)
    {
        var modelPath = TrainingFixtures.BundledModelPath;
        if (modelPath is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        var output = Path.Combine(TrainingFixtures.NewDirectory("bundled-" + mode), mode == TrainingMode.Lora ? "adapter.gguf" : "model.gguf");
        var (train, eval, evalPrompts) = SayTwiceTask(modelPath);
        var options = new TrainingOptions
        {
            BaseModelPath = modelPath,
            OutputPath = output,
            Mode = mode,
            LearningRate = learningRate,
            MaxSteps = 100, // ~90k tokens: under a minute at the trainer's 2-thread speed on the bundled model
            BatchSize = 8,
            SequenceLength = 128,
            Threads = 2,
            Seed = 1,
            Lora = new LoraOptions { Rank = 8, Alpha = 16 },
        };

        var clock = Stopwatch.StartNew();
        var result = await new LlamaTrainer().TrainAsync(options, train, eval, null, TestContext.Current.CancellationToken);
        clock.Stop();

        var drop = 1 - result.FinalEvalLoss!.Value / result.InitialEvalLoss!.Value;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{mode}: eval loss {result.InitialEvalLoss:F3} -> {result.FinalEvalLoss:F3} ({drop:P0} lower), {result.Steps} steps, {result.TokensPerSecond:F0} tokens/s, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(clock.Elapsed < Budget, $"training took {clock.Elapsed}");
        Assert.True(drop >= 0.30, $"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss} is only {drop:P0} lower");

        var before = Accuracy(modelPath, null, evalPrompts);
        var after = mode == TrainingMode.Lora ? Accuracy(modelPath, output, evalPrompts) : Accuracy(output, null, evalPrompts);
        TestContext.Current.TestOutputHelper?.WriteLine($"{mode}: held-out exact answers {before}/{evalPrompts.Count} -> {after}/{evalPrompts.Count}");
        Assert.True(after > before && after >= evalPrompts.Count / 2, $"exact answers {before} -> {after} of {evalPrompts.Count}");
    }

    /// <summary>Tokenized chat exchanges for the new task, split by word so eval words are never trained on.</summary>
    private static (List<TrainingExample> Train, List<TrainingExample> Eval, List<(string Prompt, string Answer)> EvalPrompts) SayTwiceTask(string modelPath)
    {
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(modelPath) { ContextSize = 256 });
        TrainingExample Encode(string word, string phrasing)
        {
            var prompt = Tokens(weights, TinyChatFormat.Prompt(null, string.Format(CultureInfo.InvariantCulture, phrasing, word)));
            var completion = Tokens(weights, TinyChatFormat.Completion($"{word} {word}"));
            return new TrainingExample(prompt.Concat(completion).ToArray(), promptLength: prompt.Length);
        }

        string[] phrasings = ["Say {0} twice.", "Repeat {0} two times.", "Write {0} twice."];
        var evalWords = Words.Where((_, i) => i % 5 == 0).ToList();
        var trainWords = Words.Except(evalWords).ToList();
        return (
            trainWords.SelectMany(w => phrasings.Select(p => Encode(w, p))).ToList(),
            evalWords.Select(w => Encode(w, phrasings[0])).ToList(),
            evalWords.Select(w => (TinyChatFormat.Prompt(null, $"Say {w} twice."), $"{w} {w}")).ToList());
    }

    private static int[] Tokens(LLamaWeights weights, string text) =>
        weights.Tokenize(text, add_bos: false, special: true, Encoding.UTF8).Select(t => (int)t).ToArray();

    /// <summary>Greedy answers through llama.cpp (optionally with the adapter applied) that match exactly.</summary>
    private static int Accuracy(string modelPath, string? loraPath, List<(string Prompt, string Answer)> prompts)
    {
        var parameters = new ModelParams(modelPath) { ContextSize = 256, BatchSize = 256, Threads = 2 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        if (loraPath is not null)
        {
            context.NativeHandle.SetLoraAdapters([(weights.NativeHandle.LoadLoraFromFile(loraPath), 1f)]);
        }

        var end = weights.Vocab.EOT ?? weights.Vocab.EOS;
        var correct = 0;
        foreach (var (prompt, answer) in prompts)
        {
            context.NativeHandle.MemoryClear();
            var tokens = Tokens(weights, prompt);
            var batch = new LLamaBatch();
            for (var i = 0; i < tokens.Length; i++)
            {
                batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, i == tokens.Length - 1);
            }

            var generated = new List<LLamaToken>();
            for (var step = 0; step < 16; step++)
            {
                Assert.Equal(DecodeResult.Ok, context.Decode(batch));
                var next = (LLamaToken)TrainingFixtures.ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1).ToArray());
                if (next == end)
                {
                    break;
                }

                generated.Add(next);
                batch.Clear();
                batch.Add(next, tokens.Length + step, LLamaSeqId.Zero, true);
            }

            var decoder = new StreamingTokenDecoder(Encoding.UTF8, weights);
            decoder.AddRange(generated);
            if (decoder.Read().Trim() == answer)
            {
                correct++;
            }
        }

        return correct;
    }
}
