using System.Net;
using System.Net.Http.Json;
using LLMTune.Contracts;
using LLMTune.Inference.Features.Deployment;
using LLMTune.Inference.Tests.Support;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Storage;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests;

/// <summary>Fine-tunes deployed at run time from <see cref="TrainingCompleted"/>: visible to their workspace only, persisted, removable.</summary>
public sealed class DeploymentTests(InferenceHost fixture)
{
    [Theory]
    [InlineData("lora")]
    [InlineData("full")]
    public async Task A_finished_fine_tune_is_deployed_at_run_time_for_its_workspace_only(string kind)
    {
        var (owner, ownerKey) = await fixture.CreateWorkspaceAsync("owner-" + kind);
        var (_, strangerKey) = await fixture.CreateWorkspaceAsync("stranger-" + kind);
        var jobId = "job_" + Guid.NewGuid().ToString("N")[..16];
        var modelId = $"ft:{InferenceHost.Small}:{owner}:{jobId}";
        using var client = fixture.Client(ownerKey);
        using var stranger = fixture.Client(strangerKey);

        // Before deployment the id is unknown.
        await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 8 }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found");

        var artifact = kind == "lora" ? TestModels.WriteLoraAdapter(seed: 21) : TestModels.WriteFullModel(seed: 99);
        var location = await StoreArtifactAsync(fixture.Host.Services, jobId, artifact);
        var training = new TrainingCompleted(owner, jobId, DateTimeOffset.UtcNow, jobId, InferenceHost.Small, location, kind);
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(training, TestContext.Current.CancellationToken);

        var deployed = await WaitForDeployedAsync(modelId);
        Assert.Equal(owner, deployed.WorkspaceId);
        Assert.Equal(InferenceHost.Small, deployed.BaseModel);
        Assert.Equal(jobId, deployed.JobId);

        var listed = await (await client.GetAsync("/v1/models")).Json();
        var entry = Assert.Single(listed.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == modelId);
        Assert.Equal(owner, entry.GetProperty("owned_by").GetString());

        var tuned = await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 8 })).Json();
        var baseline = await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 8 })).Json();
        Assert.Equal(modelId, tuned.GetProperty("model").GetString());
        Assert.NotEqual(baseline.GetProperty("text").GetString(), tuned.GetProperty("text").GetString());

        // Another workspace neither sees nor reaches it.
        var strangerList = await (await stranger.GetAsync("/v1/models")).Json();
        Assert.DoesNotContain(strangerList.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == modelId);
        await (await stranger.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "x" })).AssertError(HttpStatusCode.NotFound, "model_not_found");
        await (await stranger.GetAsync($"/v1/models/{modelId}")).AssertError(HttpStatusCode.NotFound, "model_not_found");
        await (await stranger.DeleteAsync($"/v1/models/{modelId}")).AssertError(HttpStatusCode.NotFound, "model_not_found");

        // A redelivered event deploys nothing new and announces nothing twice.
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(training, TestContext.Current.CancellationToken);
        var again = await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 8 })).Json();
        Assert.Equal(tuned.GetProperty("text").GetString(), again.GetProperty("text").GetString());
        await Eventually.True(() => fixture.Events.Of<TrainingCompleted>().Count(t => t.JobId == jobId) == 2, what: "the redelivery");
        await WaitForConsumedAsync(jobId, times: 2);
        Assert.Single(fixture.Events.Of<ModelDeployed>(), d => d.ModelId == modelId);

        // The owner removes it: gone from the list and from service, and a redelivery does not bring it back.
        var deleted = await (await client.DeleteAsync($"/v1/models/{modelId}")).Json();
        Assert.True(deleted.GetProperty("deleted").GetBoolean());
        await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "x" })).AssertError(HttpStatusCode.NotFound, "model_not_found");
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(training, TestContext.Current.CancellationToken);
        await WaitForConsumedAsync(jobId, times: 3);
        await (await client.GetAsync($"/v1/models/{modelId}")).AssertError(HttpStatusCode.NotFound, "model_not_found");
    }

    [Fact]
    public async Task Configured_models_cannot_be_deleted()
    {
        using var client = fixture.Client();
        await (await client.DeleteAsync($"/v1/models/{InferenceHost.Small}")).AssertError(HttpStatusCode.Forbidden, "model_not_deletable");
        await (await client.DeleteAsync("/v1/models/not/there")).AssertError(HttpStatusCode.NotFound, "model_not_found");
    }

    [Fact]
    public async Task A_restarted_service_reloads_its_deployments_from_the_store()
    {
        var settings = InferenceHost.LocalModelSettings();
        settings["Admin:OperatorToken"] = InferenceHost.OperatorToken;
        var data = Directory.CreateTempSubdirectory("llmtune-inference-restart-").FullName;
        string modelId, key, text;
        await using (var first = await TestHost.StartAsync(settings: settings, dataDirectory: data))
        {
            var events = new PublishedEvents();
            first.Services.GetRequiredService<IBus>().ConnectPublishObserver(events);
            key = first.InitialKey;
            using var client = first.Client(key);
            (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "x", maxTokens = 1 })).EnsureSuccessStatusCode();
            await Eventually.True(() => events.Of<InferenceCompleted>().Count == 1, what: "a usage event naming the workspace");
            var workspaceId = events.Of<InferenceCompleted>()[0].WorkspaceId;

            var jobId = "job_restart";
            modelId = $"ft:{InferenceHost.Small}:{workspaceId}:{jobId}";
            var location = await StoreArtifactAsync(first.Services, jobId, TestModels.WriteLoraAdapter(seed: 5));
            await first.Services.GetRequiredService<IBus>().Publish(new TrainingCompleted(
                workspaceId, jobId, DateTimeOffset.UtcNow, jobId, InferenceHost.Small, location, "lora"), TestContext.Current.CancellationToken);
            await Eventually.True(() => events.Of<ModelDeployed>().Any(d => d.ModelId == modelId), what: "the deployment");
            text = (await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 6 })).Json())
                .GetProperty("text").GetString()!;
        }

        await using var second = await TestHost.StartAsync(settings: settings, dataDirectory: data);
        using var again = second.Client(key);
        var models = await (await again.GetAsync("/v1/models")).Json();
        Assert.Contains(models.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == modelId);
        var answer = await (await again.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 6 })).Json();
        Assert.Equal(text, answer.GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_model_removed_on_another_replica_leaves_service_here_once_the_removal_is_announced()
    {
        var (owner, ownerKey) = await fixture.CreateWorkspaceAsync("owner-remote-removal");
        var jobId = "job_" + Guid.NewGuid().ToString("N")[..16];
        var modelId = $"ft:{InferenceHost.Small}:{owner}:{jobId}";
        var location = await StoreArtifactAsync(fixture.Host.Services, jobId, TestModels.WriteLoraAdapter(seed: 13));
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(
            new TrainingCompleted(owner, jobId, DateTimeOffset.UtcNow, jobId, InferenceHost.Small, location, "lora"), TestContext.Current.CancellationToken);
        await WaitForDeployedAsync(modelId);
        using var client = fixture.Client(ownerKey);
        var body = new { prompt = "Once upon a time", maxTokens = 2 };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", body)).StatusCode);

        // Another replica records the removal in the shared store; this one still has the model loaded.
        var deployments = fixture.Host.Services.GetRequiredService<IDocumentStore>().Collection<DeployedModel>(DeployedModel.Collection);
        await deployments.FindOneAndUpdateAsync(d => d.Id == modelId, d => d.RemovedAt = DateTime.UtcNow, null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", body)).StatusCode);

        // Its announcement reaches every replica: here too the model leaves service.
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(new ModelRemoved(owner, modelId, DateTimeOffset.UtcNow, modelId), TestContext.Current.CancellationToken);
        await Eventually.True(async () => (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", body)).StatusCode == HttpStatusCode.NotFound,
            TimeSpan.FromSeconds(10), "the removed model to answer 404");
    }

    [Fact]
    public async Task An_artifact_outside_the_artifact_store_is_not_deployed()
    {
        var (owner, ownerKey) = await fixture.CreateWorkspaceAsync("owner-outside");
        var jobId = "job_" + Guid.NewGuid().ToString("N")[..16];
        var modelId = $"ft:{InferenceHost.Small}:{owner}:{jobId}";
        // A real adapter, but at a path the store does not own: events must not make the service load arbitrary files.
        var outside = new Uri(TestModels.WriteLoraAdapter(seed: 8)).AbsoluteUri;
        await fixture.Host.Services.GetRequiredService<IBus>().Publish(
            new TrainingCompleted(owner, jobId, DateTimeOffset.UtcNow, jobId, InferenceHost.Small, outside, "lora"), TestContext.Current.CancellationToken);
        await WaitForConsumedAsync(jobId, times: 1);

        using var client = fixture.Client(ownerKey);
        await (await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = "x" })).AssertError(HttpStatusCode.NotFound, "model_not_found");
        Assert.DoesNotContain(fixture.Events.Of<ModelDeployed>(), d => d.ModelId == modelId);
    }

    /// <summary>Puts a trained file where the fine-tune service would (the artifact store) and returns its location.</summary>
    private static async Task<string> StoreArtifactAsync(IServiceProvider services, string jobId, string path)
    {
        var store = services.GetRequiredService<IArtifactStore>();
        var key = $"jobs/{jobId}/{Path.GetFileName(path)}";
        await using (var file = File.OpenRead(path))
        {
            await store.SaveAsync(key, file, long.MaxValue, TestContext.Current.CancellationToken);
        }

        return store.LocationOf(key);
    }

    private async Task<ModelDeployed> WaitForDeployedAsync(string modelId)
    {
        await Eventually.True(() => fixture.Events.Of<ModelDeployed>().Any(d => d.ModelId == modelId), what: $"ModelDeployed for {modelId}");
        return fixture.Events.Of<ModelDeployed>().First(d => d.ModelId == modelId);
    }

    /// <summary>Waits until the consumer has handled the job's event <paramref name="times"/> times (MassTransit's consume observer).</summary>
    private async Task WaitForConsumedAsync(string jobId, int times)
    {
        await Eventually.True(() => fixture.Consumed.Of<TrainingCompleted>().Count(t => t.JobId == jobId) >= times, what: $"{times} consumptions of {jobId}");
    }
}
