using System.Security.Cryptography;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;
using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

public sealed class FineTuningTests
{
    [Fact]
    public async Task Full_fine_tuning_lowers_eval_loss_and_writes_a_model_llama_cpp_loads()
    {
        var (train, eval) = TrainingFixtures.ReversalTask();
        var output = Path.Combine(TrainingFixtures.NewDirectory("full"), "model.gguf");
        var options = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Full, output) with { Epochs = 4 };
        var progress = new ProgressLog();

        var result = await new LlamaTrainer().TrainAsync(options, train, eval, progress, TestContext.Current.CancellationToken);

        Assert.True(result.FinalEvalLoss < result.InitialEvalLoss * 0.75f, $"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss}");
        Assert.Equal(4, result.EpochEvalLosses.Count);
        Assert.Equal(result.Steps, progress.Reports.Count);
        Assert.Equal(Enumerable.Range(1, result.Steps), progress.Reports.Select(p => p.Step));
        Assert.Equal(100, progress.Reports[^1].Percent, 6);
        Assert.All(progress.Reports, p => Assert.True(p.TokensPerSecond > 0 && p.LearningRate > 0 && float.IsFinite(p.Loss)));
        Assert.Equal(4, progress.Reports.Count(p => p.EvalLoss is not null));

        // Every weight changed, and llama.cpp agrees with the trained graph about the new model.
        var before = GgufFile.Read(TrainingFixtures.TrainableModelPath);
        var after = GgufFile.Read(output);
        Assert.Equal(before.Tensors.Select(t => t.Name), after.Tensors.Select(t => t.Name));
        Assert.All(after.Tensors, t => Assert.NotEqual(before.GetTensor(t.Name).ToFloat32(), t.ToFloat32()));
        var tokens = eval[0].Tokens.ToArray();
        var difference = TrainingFixtures.MaxAbsDifference(LlamaTrainer.ComputeLogits(output, tokens), TrainingFixtures.LlamaCppLogits(output, tokens));
        Assert.True(difference <= TrainingGraphParityTests.Tolerance, $"trained model: max logit difference {difference}");
    }

    [Fact]
    public async Task Lora_fine_tuning_trains_only_the_adapter_which_llama_cpp_loads_and_which_changes_outputs()
    {
        var basePath = TrainingFixtures.TrainableModelPath;
        var baseHash = SHA256.HashData(File.ReadAllBytes(basePath));
        var (train, eval) = TrainingFixtures.ReversalTask();
        var output = Path.Combine(TrainingFixtures.NewDirectory("lora"), "adapter.gguf");
        // A random base's head is too weak for the logits to move far, so the head gets an adapter too.
        var options = TrainingFixtures.Options(basePath, TrainingMode.Lora, output) with
        {
            Epochs = 6,
            Lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraOptions.AllModules },
        };

        var result = await new LlamaTrainer().TrainAsync(options, train, eval, null, TestContext.Current.CancellationToken);

        TestContext.Current.TestOutputHelper?.WriteLine($"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss}");
        Assert.True(result.FinalEvalLoss < result.InitialEvalLoss * 0.85f, $"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss}");
        Assert.Equal(baseHash, SHA256.HashData(File.ReadAllBytes(basePath)));

        var adapter = GgufFile.Read(output);
        Assert.Equal("adapter", adapter.GetString("general.type"));
        Assert.Equal("llama", adapter.Architecture);
        Assert.Equal("lora", adapter.GetString("adapter.type"));
        Assert.Equal(8f, adapter.GetFloat32("adapter.lora.alpha"));
        var hp = LlamaHyperparameters.FromGguf(GgufFile.Read(basePath));
        Assert.Equal((hp.BlockCount * 7 + 1) * 2, adapter.Tensors.Count);
        Assert.All(adapter.Tensors, t => Assert.True(t.Name.EndsWith(".lora_a", StringComparison.Ordinal) || t.Name.EndsWith(".lora_b", StringComparison.Ordinal)));
        Assert.Equal([64L, 4L], adapter.GetTensor("blk.0.attn_q.weight.lora_a").Shape);
        Assert.Equal([4L, 32L], adapter.GetTensor("blk.0.attn_k.weight.lora_b").Shape);
        Assert.Contains(adapter.GetTensor("blk.1.ffn_down.weight.lora_b").ToFloat32(), v => v != 0f);
        Assert.Equal(result.TrainableParameters, adapter.Tensors.Sum(t => t.ElementCount));

        // llama.cpp with the adapter computes what the training graph learned, and differs from the bare base.
        var tokens = eval[0].Tokens.ToArray();
        var plain = TrainingFixtures.LlamaCppLogits(basePath, tokens);
        var adapted = TrainingFixtures.LlamaCppLogits(basePath, tokens, output);
        Assert.True(TrainingFixtures.MaxAbsDifference(plain, adapted) > 0.5f, "the adapter should change the logits");
        var merged = MergeIntoBase(basePath, adapter, options.Lora);
        var difference = TrainingFixtures.MaxAbsDifference(LlamaTrainer.ComputeLogits(merged, tokens), adapted);
        Assert.True(difference <= 2e-3f, $"adapter applied by llama.cpp vs merged weights: max logit difference {difference}");

        // The adapter moves the completion towards the task: more reversed tokens predicted greedily than without it.
        int Correct(float[][] logits) => Enumerable.Range(5, 5).Count(i => TrainingFixtures.ArgMax(logits[i]) == tokens[i + 1]);
        Assert.True(Correct(adapted) > Correct(plain), $"correct next tokens: base {Correct(plain)}, adapted {Correct(adapted)}");
    }

    [Fact]
    public async Task Lora_trains_on_a_quantized_base_and_llama_cpp_applies_the_adapter_to_it()
    {
        var basePath = TestModels.Get("trainable-q8", new RandomLlamaOptions
        {
            EmbeddingLength = 64,
            BlockCount = 2,
            HeadCount = 4,
            HeadCountKv = 2,
            FeedForwardLength = 128,
            ContextLength = 128,
            Seed = 11,
            Name = "test-q8",
            WeightType = GgmlType.Q8_0,
        }).Path;
        Assert.Equal(GgmlType.Q8_0, GgufFile.Read(basePath).GetTensor("blk.0.attn_q.weight").Type);
        var (train, eval) = TrainingFixtures.ReversalTask(trainCount: 160, evalCount: 16);
        var output = Path.Combine(TrainingFixtures.NewDirectory("lora-q8"), "adapter.gguf");
        var options = TrainingFixtures.Options(basePath, TrainingMode.Lora, output) with
        {
            Epochs = 4,
            Lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["attn_q", "attn_v", "ffn_up", "output"] },
        };

        var result = await new LlamaTrainer().TrainAsync(options, train, eval, null, TestContext.Current.CancellationToken);

        Assert.True(result.FinalEvalLoss < result.InitialEvalLoss, $"eval loss {result.InitialEvalLoss} -> {result.FinalEvalLoss}");
        var tokens = eval[0].Tokens.ToArray();
        var plain = TrainingFixtures.LlamaCppLogits(basePath, tokens);
        var adapted = TrainingFixtures.LlamaCppLogits(basePath, tokens, output);
        Assert.True(TrainingFixtures.MaxAbsDifference(plain, adapted) > 0.1f, "the adapter should change llama.cpp's logits on the quantized base");
    }

    [Fact]
    public async Task Runs_with_the_same_seed_and_threads_are_identical()
    {
        var (train, eval) = TrainingFixtures.ReversalTask(trainCount: 64, evalCount: 8);
        var dir = TrainingFixtures.NewDirectory("determinism");
        var first = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Lora, Path.Combine(dir, "a.gguf")) with { MaxSteps = 6 };
        var second = first with { OutputPath = Path.Combine(dir, "b.gguf") };
        var log1 = new ProgressLog();
        var log2 = new ProgressLog();

        await new LlamaTrainer().TrainAsync(first, train, eval, log1, TestContext.Current.CancellationToken);
        await new LlamaTrainer().TrainAsync(second, train, eval, log2, TestContext.Current.CancellationToken);

        Assert.Equal(log1.Reports.Select(p => p.Loss), log2.Reports.Select(p => p.Loss));
        Assert.Equal(File.ReadAllBytes(first.OutputPath), File.ReadAllBytes(second.OutputPath));
    }

    /// <summary>Writes base + (alpha/rank)·B·A into a copy of the base, the way llama.cpp applies the adapter.</summary>
    private static string MergeIntoBase(string basePath, GgufFile adapter, LoraOptions lora)
    {
        var baseFile = GgufFile.Read(basePath);
        var writer = new GgufWriter();
        foreach (var (key, value) in baseFile.Metadata)
        {
            writer.Metadata.Set(key, value);
        }

        var scale = lora.Alpha / lora.Rank;
        foreach (var tensor in baseFile.Tensors)
        {
            var values = tensor.ToFloat32();
            if (adapter.FindTensor(tensor.Name + ".lora_a") is { } a)
            {
                var b = adapter.GetTensor(tensor.Name + ".lora_b");
                int input = (int)tensor.Shape[0], output = (int)tensor.Shape[1], rank = (int)a.Shape[1];
                float[] av = a.ToFloat32(), bv = b.ToFloat32();
                for (var o = 0; o < output; o++)
                {
                    for (var i = 0; i < input; i++)
                    {
                        var sum = 0f;
                        for (var r = 0; r < rank; r++)
                        {
                            sum += bv[o * rank + r] * av[r * input + i];
                        }

                        values[o * input + i] += scale * sum;
                    }
                }
            }

            writer.AddTensor(tensor.Name, tensor.Shape, values);
        }

        var path = Path.Combine(TrainingFixtures.NewDirectory("merged"), "merged.gguf");
        writer.Write(path);
        return path;
    }
}
