using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;
using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

/// <summary>
/// The training graph's forward pass against llama.cpp's own inference (through LLamaSharp), same model and tokens.
/// Tolerance: max |difference| of any logit ≤ <see cref="Tolerance"/> with an F32 KV cache and flash attention off
/// (the two compute the same operations in the same order; flash attention on differs by ~1e-4).
/// </summary>
public sealed class TrainingGraphParityTests
{
    public const float Tolerance = 1e-3f;

    [Fact]
    public void Logits_match_llama_cpp_for_a_random_model_with_grouped_query_attention()
    {
        var (path, builder) = TestModels.Get("small", TestModels.Small);
        var hp = builder.Weights.Hyperparameters;
        Assert.True(hp.HeadCountKv < hp.HeadCount, "the model must use grouped-query attention");
        var random = new Random(3);
        var tokens = Enumerable.Range(0, 40).Select(_ => random.Next(hp.VocabSize)).ToArray();

        var ours = LlamaTrainer.ComputeLogits(path, tokens);
        var reference = TrainingFixtures.LlamaCppLogits(path, tokens);

        Assert.Equal(tokens.Length, ours.Length);
        Assert.Equal(hp.VocabSize, ours[0].Length);
        var spread = reference.Max(r => r.Max() - r.Min());
        Assert.True(spread > 1f, $"logits must vary for the comparison to mean something (spread {spread})");
        var difference = TrainingFixtures.MaxAbsDifference(ours, reference);
        TestContext.Current.TestOutputHelper?.WriteLine($"max logit difference {difference:E2}, logit spread {spread:F2}");
        Assert.True(difference <= Tolerance, $"max logit difference {difference} exceeds {Tolerance}");
        Assert.Equal(reference.Select(TrainingFixtures.ArgMax), ours.Select(TrainingFixtures.ArgMax));
    }

    [Fact]
    public void Logits_match_llama_cpp_when_the_head_is_tied_to_the_embeddings()
    {
        var (path, builder) = TestModels.Get("small-tied", TestModels.Small with { TiedOutput = true, Seed = 8 });
        Assert.Null(builder.Weights.Output);
        var random = new Random(5);
        var tokens = Enumerable.Range(0, 24).Select(_ => random.Next(builder.Weights.Hyperparameters.VocabSize)).ToArray();

        var difference = TrainingFixtures.MaxAbsDifference(LlamaTrainer.ComputeLogits(path, tokens), TrainingFixtures.LlamaCppLogits(path, tokens));

        Assert.True(difference <= Tolerance, $"max logit difference {difference} exceeds {Tolerance}");
    }

    [Fact]
    public void Logits_match_llama_cpp_for_the_bundled_model()
    {
        var path = TrainingFixtures.BundledModelPath;
        if (path is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        var file = GgufFile.Read(path);
        var vocab = LlamaHyperparameters.FromGguf(file).VocabSize;
        var random = new Random(4);
        var tokens = Enumerable.Range(0, 64).Select(_ => random.Next(vocab)).ToArray();

        var difference = TrainingFixtures.MaxAbsDifference(LlamaTrainer.ComputeLogits(path, tokens), TrainingFixtures.LlamaCppLogits(path, tokens));
        TestContext.Current.TestOutputHelper?.WriteLine($"max logit difference {difference:E2}");

        Assert.True(difference <= Tolerance, $"max logit difference {difference} exceeds {Tolerance}");
    }
}
