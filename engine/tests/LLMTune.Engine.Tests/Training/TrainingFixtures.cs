using LLama;
using LLama.Common;
using LLama.Native;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

/// <summary>Models, synthetic data and llama.cpp reference helpers shared by the training tests.</summary>
internal static class TrainingFixtures
{
    /// <summary>The bundled model, or null when it has not been built (see <see cref="BundledModel.Find()"/>).</summary>
    public static string? BundledModelPath => BundledModel.Find();

    /// <summary>A small GQA model (4 query heads over 2 KV heads) with ordinary init, for training tests.</summary>
    public static string TrainableModelPath => TestModels.Get("trainable-gqa", new RandomLlamaOptions
    {
        EmbeddingLength = 64,
        BlockCount = 2,
        HeadCount = 4,
        HeadCountKv = 2,
        FeedForwardLength = 128,
        ContextLength = 128,
        Seed = 11,
        InitStd = 0.02f,
        Name = "test-trainable",
    }).Path;

    /// <summary>
    /// A reversal task over token ids 40..89: prompt <c>[10, a, b, c, d, 11]</c>, completion <c>[d, c, b, a, 12]</c>.
    /// The prompt is masked out of the loss.
    /// </summary>
    public static (List<TrainingExample> Train, List<TrainingExample> Eval) ReversalTask(int trainCount = 320, int evalCount = 48, int seed = 5)
    {
        var random = new Random(seed);
        TrainingExample Make()
        {
            var items = Enumerable.Range(0, 4).Select(_ => 40 + random.Next(50)).ToArray();
            var tokens = new List<int> { 10 };
            tokens.AddRange(items);
            tokens.Add(11);
            tokens.AddRange(items.Reverse());
            tokens.Add(12);
            return new TrainingExample(tokens, promptLength: 6);
        }

        return (Enumerable.Range(0, trainCount).Select(_ => Make()).ToList(), Enumerable.Range(0, evalCount).Select(_ => Make()).ToList());
    }

    public static TrainingOptions Options(string basePath, TrainingMode mode, string outputPath) => new()
    {
        BaseModelPath = basePath,
        OutputPath = outputPath,
        Mode = mode,
        LearningRate = mode == TrainingMode.Full ? 3e-3f : 1e-2f,
        BatchSize = 8,
        SequenceLength = 48,
        Threads = 2,
        Seed = 3,
        Lora = new LoraOptions { Rank = 4, Alpha = 8 },
    };

    /// <summary>llama.cpp's logits for every position of one sequence (F32 KV cache, flash attention off).</summary>
    public static float[][] LlamaCppLogits(string modelPath, IReadOnlyList<int> tokens, string? loraPath = null)
    {
        var parameters = new ModelParams(modelPath)
        {
            ContextSize = (uint)Math.Max(64, tokens.Count),
            BatchSize = (uint)Math.Max(64, tokens.Count),
            UBatchSize = (uint)Math.Max(64, tokens.Count),
            Threads = 2,
            FlashAttention = false,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        if (loraPath is not null)
        {
            var adapter = weights.NativeHandle.LoadLoraFromFile(loraPath);
            context.NativeHandle.SetLoraAdapters([(adapter, 1f)]);
        }

        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Count; i++)
        {
            batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, true);
        }

        if (context.Decode(batch) != DecodeResult.Ok)
        {
            throw new InvalidOperationException("llama.cpp failed to decode the batch.");
        }

        return Enumerable.Range(0, tokens.Count).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
    }

    public static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    public static float MaxAbsDifference(float[][] a, float[][] b) =>
        a.Zip(b).Max(pair => pair.First.Zip(pair.Second).Max(x => MathF.Abs(x.First - x.Second)));

    /// <summary>A fresh empty folder for one test's outputs.</summary>
    public static string NewDirectory(string name) => Directory.CreateTempSubdirectory($"llmtune-train-{name}-").FullName;
}

/// <summary>Collects progress synchronously (Progress&lt;T&gt; would post to the thread pool and race the assertions).</summary>
internal sealed class ProgressLog(Action<TrainingProgress>? onReport = null) : IProgress<TrainingProgress>
{
    private readonly List<TrainingProgress> _reports = [];

    public IReadOnlyList<TrainingProgress> Reports
    {
        get
        {
            lock (_reports)
            {
                return _reports.ToList();
            }
        }
    }

    public void Report(TrainingProgress value)
    {
        lock (_reports)
        {
            _reports.Add(value);
        }

        onReport?.Invoke(value);
    }
}
