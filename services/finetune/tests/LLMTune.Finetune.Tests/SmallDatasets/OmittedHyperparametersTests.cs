using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests.SmallDatasets;

/// <summary>With no hyperparameters at all, a 60-line dataset teaches llmtune/tiny a fact it can state when asked differently.</summary>
public sealed class OmittedHyperparametersTests(TrainingHostFixture fixture) : IClassFixture<TrainingHostFixture>
{
    [Fact]
    public async Task Omitted_hyperparameters_teach_a_small_fact_dataset_that_the_base_model_does_not_know()
    {
        if (FinetuneTestModels.Bundled is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        using var client = fixture.Host.Client();
        await FactDataset.TeachAndCheckAsync(client, hyperparameters: null);
    }
}
