using System.Diagnostics;
using System.Globalization;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Training;

// Measures training throughput of LlamaTrainer on the bundled model (or a random model of the same shape when
// models/llmtune-tiny.gguf is absent): full fine-tuning and LoRA, tokens/s over a fixed number of steps.
// Usage: LLMTune.Bench.Training [--model path] [--steps N] [--threads 1,2] [--batch N] [--seq N]
// Note: ggml's CPU threads spin at every op barrier, so on a machine busy with other work more threads can be slower.
var arguments = ParseArguments(args);
var steps = int.Parse(arguments.GetValueOrDefault("steps", "40"), CultureInfo.InvariantCulture);
var threadCounts = arguments.GetValueOrDefault("threads", "1,2").Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
var batchSize = int.Parse(arguments.GetValueOrDefault("batch", "8"), CultureInfo.InvariantCulture);
var sequenceLength = int.Parse(arguments.GetValueOrDefault("seq", "128"), CultureInfo.InvariantCulture);
var work = Directory.CreateTempSubdirectory("llmtune-bench-training-").FullName;

try
{
    var modelPath = arguments.GetValueOrDefault("model") ?? BundledModel.Find();
    string description;
    if (modelPath is null)
    {
        modelPath = Path.Combine(work, "random-tiny-shape.gguf");
        LlamaGgufBuilder.WriteRandom(modelPath, new RandomLlamaOptions
        {
            EmbeddingLength = 128,
            BlockCount = 4,
            HeadCount = 4,
            HeadCountKv = 4,
            FeedForwardLength = 384,
            ContextLength = 256,
            Seed = 1,
            Name = "bench-random",
        });
        description = $"random model shaped like llmtune-tiny ({BundledModel.RelativePath} not found)";
    }
    else
    {
        description = modelPath;
    }

    var hp = LlamaHyperparameters.FromGguf(GgufFile.Read(modelPath));
    Console.WriteLine($"model:   {description}");
    Console.WriteLine($"shape:   vocab {hp.VocabSize}, embd {hp.EmbeddingLength}, layers {hp.BlockCount}, heads {hp.HeadCount}/{hp.HeadCountKv} kv, ffn {hp.FeedForwardLength}, {hp.ParameterCount() / 1e6:F2} M parameters");
    Console.WriteLine($"run:     {steps} steps per measurement, batch {batchSize} x {sequenceLength} tokens, threads {string.Join(", ", threadCounts)} ({Environment.ProcessorCount} cores)");
    Console.WriteLine();

    // Synthetic sequences of 24-72 tokens (prompt = first third) packed into full rows: the token count per
    // step is what a real fine-tune with short chat examples would see.
    var random = new Random(7);
    var examples = Enumerable.Range(0, 4000).Select(_ =>
    {
        var length = random.Next(24, 73);
        return new TrainingExample(Enumerable.Range(0, length).Select(_ => random.Next(hp.VocabSize)).ToArray(), promptLength: length / 3);
    }).ToList();

    foreach (var threads in threadCounts)
        foreach (var mode in new[] { TrainingMode.Full, TrainingMode.Lora })
        {
            var options = new TrainingOptions
            {
                BaseModelPath = modelPath,
                OutputPath = Path.Combine(work, $"out-{mode}.gguf"),
                Mode = mode,
                MaxSteps = steps,
                BatchSize = batchSize,
                SequenceLength = sequenceLength,
                Threads = threads,
                LearningRate = 1e-3f,
                Lora = new LoraOptions { Rank = 8, Alpha = 16 },
            };
            var wall = Stopwatch.StartNew();
            var result = await new LlamaTrainer().TrainAsync(options, examples, [], null);
            wall.Stop();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{mode,-4} {threads} thread(s): {result.TokensPerSecond,8:F0} tokens/s  ({result.TrainedTokens} tokens, {result.Steps} steps, {result.TrainableParameters / 1e6:F3} M trainable, loss {result.FinalTrainLoss:F3}, wall {wall.Elapsed.TotalSeconds:F1} s incl. load and save)"));
        }
}
finally
{
    Directory.Delete(work, recursive: true);
}

static Dictionary<string, string> ParseArguments(string[] args)
{
    var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
    for (var i = 0; i + 1 < args.Length; i += 2)
    {
        parsed[args[i].TrimStart('-')] = args[i + 1];
    }

    return parsed;
}
