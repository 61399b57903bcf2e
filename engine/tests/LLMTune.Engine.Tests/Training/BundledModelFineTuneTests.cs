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
/// Fine-tunes the bundled model on a task it never saw ("Is 37 even or odd?" -> "odd"), LoRA and full, each within
/// two minutes, and checks that eval loss on held-out words drops by at least 30% and that greedy answers
/// served by llama.cpp move toward the task.
/// </summary>
public sealed class BundledModelFineTuneTests
{
    [Fact]
    public Task Lora_fine_tune_of_the_bundled_model_lowers_eval_loss_by_30_percent_within_60_steps() =>
        FineTuneBundledModel(TrainingMode.Lora, learningRate: 1e-2f);

    [Fact]
    public Task Full_fine_tune_of_the_bundled_model_lowers_eval_loss_by_30_percent_within_60_steps() =>
        FineTuneBundledModel(TrainingMode.Full, learningRate: 2e-3f);

    private static async Task FineTuneBundledModel(TrainingMode mode, float learningRate)
    {
        var modelPath = TrainingFixtures.BundledModelPath;
        if (modelPath is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        var output = Path.Combine(TrainingFixtures.NewDirectory("bundled-" + mode), mode == TrainingMode.Lora ? "adapter.gguf" : "model.gguf");
        var (train, eval, evalPrompts) = ParityTask(modelPath);
        var options = new TrainingOptions
        {
            BaseModelPath = modelPath,
            OutputPath = output,
            Mode = mode,
            LearningRate = learningRate,
            MaxSteps = 60, // ~55k tokens: well under a minute at the trainer's 2-thread speed on the bundled model
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
        // The time is printed, not asserted: a speed target belongs in bench/, and this VM's speed varies with load.
        Assert.True(drop >= 0.30, $"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss} is only {drop:P0} lower");

        // Served answers move to the task: "even"/"odd" instead of whatever the base said. (Whether the parity is
        // right is reported, not asserted: 60 steps teach the format long before the last-digit rule.)
        var before = Answers(modelPath, null, evalPrompts);
        var after = mode == TrainingMode.Lora ? Answers(modelPath, output, evalPrompts) : Answers(output, null, evalPrompts);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{mode}: held-out answers in the task's form {before.OnTask}/{evalPrompts.Count} -> {after.OnTask}, exactly right {before.Exact} -> {after.Exact}");
        Assert.True(after.OnTask > before.OnTask && after.OnTask >= evalPrompts.Count * 0.8,
            $"answers in the task's form {before.OnTask} -> {after.OnTask} of {evalPrompts.Count}");
    }

    /// <summary>Tokenized chat exchanges for the new task, split by number so eval numbers are never trained on.</summary>
    private static (List<TrainingExample> Train, List<TrainingExample> Eval, List<(string Prompt, string Answer)> EvalPrompts) ParityTask(string modelPath)
    {
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(modelPath) { ContextSize = 256 });
        string[] phrasings = ["Is {0} even or odd?", "Is the number {0} odd or even?", "Even or odd: {0}?"];
        static string Answer(int n) => n % 2 == 0 ? "even" : "odd";
        TrainingExample Encode(int number, string phrasing)
        {
            var prompt = Tokens(weights, TinyChatFormat.Prompt(null, string.Format(CultureInfo.InvariantCulture, phrasing, number)));
            var completion = Tokens(weights, TinyChatFormat.Completion(Answer(number)));
            return new TrainingExample(prompt.Concat(completion).ToArray(), promptLength: prompt.Length);
        }

        var random = new Random(17);
        var numbers = Enumerable.Range(0, 1000).OrderBy(_ => random.Next()).ToList();
        var evalNumbers = numbers.Take(40).ToList();
        var trainNumbers = numbers.Skip(40).Take(300).ToList();
        return (
            trainNumbers.Select((n, i) => Encode(n, phrasings[i % phrasings.Length])).ToList(),
            evalNumbers.Select((n, i) => Encode(n, phrasings[i % phrasings.Length])).ToList(),
            evalNumbers.Select((n, i) => (TinyChatFormat.Prompt(null, string.Format(CultureInfo.InvariantCulture, phrasings[i % phrasings.Length], n)), Answer(n))).ToList());
    }

    private static int[] Tokens(LLamaWeights weights, string text) =>
        weights.Tokenize(text, add_bos: false, special: true, Encoding.UTF8).Select(t => (int)t).ToArray();

    /// <summary>Greedy answers through llama.cpp (optionally with the adapter applied): how many are "even"/"odd", how many exactly right.</summary>
    private static (int OnTask, int Exact) Answers(string modelPath, string? loraPath, List<(string Prompt, string Answer)> prompts)
    {
        var parameters = new ModelParams(modelPath) { ContextSize = 256, BatchSize = 256, Threads = 2 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        if (loraPath is not null)
        {
            context.NativeHandle.SetLoraAdapters([(weights.NativeHandle.LoadLoraFromFile(loraPath), 1f)]);
        }

        var end = weights.Vocab.EOT ?? weights.Vocab.EOS;
        int onTask = 0, exact = 0;
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
            var text = decoder.Read().Trim();
            onTask += text is "even" or "odd" ? 1 : 0;
            exact += text == answer ? 1 : 0;
        }

        return (onTask, exact);
    }
}
