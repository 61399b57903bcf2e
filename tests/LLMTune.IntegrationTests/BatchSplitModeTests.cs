using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Batch;
using LLMTune.Engine.TinyModel;
using LLMTune.Gateway.Workspaces;
using LLMTune.Inference;
using LLMTune.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.IntegrationTests;

/// <summary>
/// Split mode on RabbitMQ: the gateway, the batch service and the inference service in three hosts with their own
/// stores; a batch sent through the gateway runs on the inference service and completes.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class BatchSplitModeTests(RabbitMqBroker broker)
{
    private const string InternalSecret = "internal-secret-for-tests-0123456789";

    [Fact]
    public async Task A_batch_completes_with_batch_and_inference_in_separate_processes_over_RabbitMQ()
    {
        var rabbit = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "RabbitMq",
            ["ConnectionStrings:RabbitMq"] = broker.RequireUrl(),
            ["Internal:Secret"] = InternalSecret,
        };
        await using var inference = await ModuleHost.StartAsync([new InferenceModule()], new Dictionary<string, string?>(rabbit)
        {
            [$"Inference:Models:{InferenceOptions.BundledModelId}:Path"] = BundledModel.Find(),
        });
        await using var batch = await ModuleHost.StartAsync([new BatchModule()], new Dictionary<string, string?>(rabbit)
        {
            ["Batch:PollInterval"] = "00:00:00.200",
        });
        await using var gateway = await TestHost.StartAsync("gateway", new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "LiteDb",
            ["Bus:Transport"] = "InMemory",
            ["Internal:Secret"] = InternalSecret,
            ["ReverseProxy:Clusters:batch:Destinations:batch-1:Address"] = batch.Address.ToString(),
        });
        await Eventually.True(async () => await Ready(inference) && await Ready(batch), TimeSpan.FromSeconds(90), "both buses and the model");
        var workspace = await gateway.Services.GetRequiredService<WorkspaceService>().CreateAsync("split-batch", Plans.Sandbox, CancellationToken.None);
        using var client = gateway.Client(workspace.Secret);

        var unknown = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId = "nobody/unknown", requests = new[] { new { id = "a", prompt = "Hi" } } });
        await unknown.AssertError(HttpStatusCode.NotFound, "model_not_found", "modelId");

        var accepted = await (await client.PostAsJsonAsync("/v1/batch/inference", new
        {
            modelId = InferenceOptions.BundledModelId,
            requests = Enumerable.Range(1, 5).Select(i => new { id = $"split-{i}", prompt = $"Prompt {i}", maxTokens = 6 }).ToArray(),
        })).Json(HttpStatusCode.Accepted);
        var batchId = accepted.GetProperty("batchId").GetString()!;

        var done = await Eventually.Get<JsonElement?>(
            async () => await (await client.GetAsync($"/v1/batch/{batchId}")).Json(),
            b => b is { } e && e.GetProperty("status").GetString() is "completed" or "completed_with_errors" or "failed",
            TimeSpan.FromSeconds(90), "the batch to complete");
        Assert.Equal("completed", done!.Value.GetProperty("status").GetString());
        Assert.Equal(5, done.Value.GetProperty("counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(5, done.Value.GetProperty("results").GetArrayLength());

        var list = await (await client.GetAsync("/v1/batch")).Json();
        Assert.Equal(batchId, list.GetProperty("data")[0].GetProperty("batchId").GetString());
    }

    private static async Task<bool> Ready(ModuleHost host)
    {
        using var client = new HttpClient { BaseAddress = host.Address };
        using var response = await client.GetAsync("/readyz");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString() == "Healthy";
    }
}
