using LLMTune.Engine.Gguf;
using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

public sealed class LoraVariantTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string Prompt = "The meaning of life is";

    [Fact]
    public async Task A_non_zero_adapter_changes_the_logits_and_removing_it_restores_them()
    {
        var hp = TestModels.SmallBuilder.Weights.Hyperparameters;
        var adapterPath = TestModels.NewPath("lora");
        LoraAdapterGguf.Write(adapterPath, "llama", alpha: 8, LoraAdapterGguf.CreateRandomPairs(hp, rank: 4, seed: 11, std: 0.2f));
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 2);
        var baseline = await host.Model.GetNextTokenLogitsAsync(Prompt, cancellationToken: Ct);

        await host.Model.AddVariantAsync(new ModelVariantOptions("tuned", [new LoraAdapterReference(adapterPath)]));
        var tuned = await host.Model.GetNextTokenLogitsAsync(Prompt, "tuned", Ct);
        var baseWhileTunedLoaded = await host.Model.GetNextTokenLogitsAsync(Prompt, cancellationToken: Ct);

        Assert.Contains("tuned", host.Model.Variants);
        Assert.True(MaxDifference(baseline, tuned) > 0.05f, $"the adapter moved the logits by only {MaxDifference(baseline, tuned)}");
        Assert.Equal(baseline, baseWhileTunedLoaded);

        // Taking the adapter off the variant's context gives base behaviour again.
        await host.Model.SetVariantAdaptersAsync("tuned", []);
        var untuned = await host.Model.GetNextTokenLogitsAsync(Prompt, "tuned", Ct);
        Assert.True(MaxDifference(baseline, untuned) < 1e-4f, $"logits differ from the base by {MaxDifference(baseline, untuned)}");

        await host.Model.RemoveVariantAsync("tuned");
        Assert.Empty(host.Model.Variants);
        await Assert.ThrowsAsync<ModelNotFoundException>(() => host.Model.GetNextTokenLogitsAsync(Prompt, "tuned", Ct));
        Assert.Equal(baseline, await host.Model.GetNextTokenLogitsAsync(Prompt, cancellationToken: Ct));
    }

    [Fact]
    public async Task An_adapter_with_zero_B_leaves_the_logits_unchanged_and_the_scale_matters()
    {
        var hp = TestModels.SmallBuilder.Weights.Hyperparameters;
        var pairs = LoraAdapterGguf.CreateRandomPairs(hp, rank: 4, seed: 5, std: 0.2f);
        var zeroPath = TestModels.NewPath("lora-zero");
        LoraAdapterGguf.Write(zeroPath, "llama", alpha: 4, pairs.Select(p => p with { B = new float[p.B.Length] }));
        var realPath = TestModels.NewPath("lora-real");
        LoraAdapterGguf.Write(realPath, "llama", alpha: 4, pairs);
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 1, variants:
        [
            new ModelVariantOptions("zero", [new LoraAdapterReference(zeroPath)]),
            new ModelVariantOptions("half", [new LoraAdapterReference(realPath, Scale: 0.5f)]),
            new ModelVariantOptions("full", [new LoraAdapterReference(realPath, Scale: 1f)]),
        ]);

        var baseline = await host.Model.GetNextTokenLogitsAsync(Prompt, cancellationToken: Ct);
        var zero = await host.Model.GetNextTokenLogitsAsync(Prompt, "zero", Ct);
        var half = await host.Model.GetNextTokenLogitsAsync(Prompt, "half", Ct);
        var full = await host.Model.GetNextTokenLogitsAsync(Prompt, "full", Ct);

        Assert.True(MaxDifference(baseline, zero) < 1e-4f);
        Assert.True(MaxDifference(baseline, half) > 1e-3f);
        Assert.True(MaxDifference(baseline, full) > MaxDifference(baseline, half));
        // One adapter file, loaded once, serves two variants at different scales.
        Assert.Equal(["full", "half", "zero"], host.Model.Variants);
    }

    [Fact]
    public async Task A_variant_generates_through_the_batch_loop()
    {
        var hp = TestModels.SmallBuilder.Weights.Hyperparameters;
        var adapterPath = TestModels.NewPath("lora-generate");
        LoraAdapterGguf.Write(adapterPath, "llama", alpha: 16, LoraAdapterGguf.CreateRandomPairs(hp, rank: 8, seed: 3, std: 0.5f));
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, variants: [new ModelVariantOptions("tuned", [new LoraAdapterReference(adapterPath)])]);
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 16, Temperature = 0 };

        var results = await Task.WhenAll(
            host.Model.CompleteAsync(request, Ct),
            host.Model.CompleteAsync(request with { Variant = "tuned" }, Ct));

        Assert.Equal(16, results[1].CompletionTokens);
        Assert.NotEqual(results[0].Text, results[1].Text);
    }

    [Fact]
    public async Task A_missing_or_mismatched_adapter_fails_to_load_cleanly()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 1);
        var wrongShape = TestModels.NewPath("lora-wrong");
        var other = new LlamaHyperparameters(300, 64, 32, 2, 2, 2, 64);
        LoraAdapterGguf.Write(wrongShape, "llama", 4, LoraAdapterGguf.CreateRandomPairs(other, 2, 1));

        var missing = await Assert.ThrowsAsync<ModelLoadException>(() => host.Model.AddVariantAsync(new ModelVariantOptions("missing", [new LoraAdapterReference("/nonexistent/adapter.gguf")])));
        Assert.Contains("does not exist", missing.Message);
        await Assert.ThrowsAsync<ModelLoadException>(() => host.Model.AddVariantAsync(new ModelVariantOptions("wrong", [new LoraAdapterReference(wrongShape)])));
        Assert.Empty(host.Model.Variants);
        Assert.Equal(4, (await host.Model.CompleteAsync(new GenerationRequest { Prompt = "still works", MaxTokens = 4, Temperature = 0 }, Ct)).CompletionTokens);
    }

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
}
