using System.Net;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests.SmallDatasets;

/// <summary>The seed's body shape with each hyperparameter set to "auto" teaches the fact; its checkpoints can be listed and downloaded by the owner only.</summary>
public sealed class AutoHyperparametersTests(TrainingHostFixture fixture) : IClassFixture<TrainingHostFixture>
{
    [Fact]
    public async Task Auto_values_in_the_seed_body_teach_the_fact_and_the_best_checkpoint_deploys_and_downloads()
    {
        if (FinetuneTestModels.Bundled is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        var host = fixture.Host;
        using var client = host.Client();
        var done = await FactDataset.TeachAndCheckAsync(client, new { learningRate = "auto", epochs = "auto", batchSize = "auto" });
        var jobId = done.GetProperty("id").GetString()!;

        // Checkpoints: one per new best eval loss, newest first; the deployed one is the best and is the job's deployed step.
        var page = await (await client.GetAsync($"/v1/fine-tune/{jobId}/checkpoints?limit=100")).Json();
        var checkpoints = page.GetProperty("data").EnumerateArray().ToList();
        Assert.NotEmpty(checkpoints);
        var steps = checkpoints.Select(c => c.GetProperty("step").GetInt32()).ToList();
        Assert.Equal(steps.OrderDescending(), steps);
        Assert.All(checkpoints, c => Assert.True(c.GetProperty("loss").GetDouble() > 0 && c.GetProperty("evalLoss").GetDouble() > 0 && c.GetProperty("bytes").GetInt64() > 0));
        var deployed = Assert.Single(checkpoints, c => c.GetProperty("deployed").GetBoolean());
        Assert.Equal(done.GetProperty("deployedCheckpoint").GetProperty("step").GetInt32(), deployed.GetProperty("step").GetInt32());
        Assert.Equal(checkpoints.Min(c => c.GetProperty("evalLoss").GetDouble()), deployed.GetProperty("evalLoss").GetDouble());

        // The download is the adapter that was deployed, byte for byte.
        var download = await client.GetAsync(deployed.GetProperty("downloadUrl").GetString());
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        var bytes = await download.Content.ReadAsByteArrayAsync();
        Assert.Equal(deployed.GetProperty("bytes").GetInt64(), bytes.LongLength);
        var completed = host.Events.Of<LLMTune.Contracts.TrainingCompleted>().Single(c => c.JobId == jobId);
        Assert.Equal(await File.ReadAllBytesAsync(new Uri(completed.ArtifactUri).LocalPath), bytes);

        // Another workspace sees neither the list nor the file.
        using var other = host.Client(await host.CreateWorkspaceKeyAsync("checkpoints-other"));
        await (await other.GetAsync($"/v1/fine-tune/{jobId}/checkpoints")).AssertError(HttpStatusCode.NotFound, "job_not_found");
        await (await other.GetAsync(deployed.GetProperty("downloadUrl").GetString())).AssertError(HttpStatusCode.NotFound, "job_not_found");
        await (await client.GetAsync($"/v1/fine-tune/{jobId}/checkpoints/ftckpt_unknown/content")).AssertError(HttpStatusCode.NotFound, "checkpoint_not_found");
    }
}
