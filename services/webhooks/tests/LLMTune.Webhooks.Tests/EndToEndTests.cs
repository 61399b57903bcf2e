using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Webhooks.Tests.Support;
using StandardWebhooks;

namespace LLMTune.Webhooks.Tests;

/// <summary>The whole host with a real clock: a fine-tune's lifecycle reaches its webhookUrl, signed and in order.</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task A_fine_tune_with_a_webhook_url_delivers_started_completed_and_deployed_in_order_each_verified()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync();
        using var client = host.Client();

        // The workspace signing secret is shown once.
        var secretView = await (await client.GetAsync("/v1/webhooks/secret")).Json();
        var secret = secretView.GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, (await (await client.GetAsync("/v1/webhooks/secret")).Json()).GetProperty("secret").ValueKind);

        var file = await UploadAsync(client, Dataset(8));
        var job = await (await client.PostAsJsonAsync("/v1/fine-tune", new
        {
            baseModel = "llmtune/tiny",
            dataset = file,
            hyperparameters = new { learningRate = 0.005, epochs = 1, batchSize = 4 },
            webhookUrl = receiver.Url("/fine-tune-callback"),
        })).Json(HttpStatusCode.Created);
        var jobId = job.GetProperty("id").GetString()!;

        await Eventually.True(() => receiver.Requests.Count >= 3, TimeSpan.FromMinutes(4), "three webhooks");
        var requests = receiver.Requests;
        Assert.Equal(["training.started", "training.completed", "model.deployed"], requests.Select(r => r.Event));
        Assert.All(requests, r => Assert.Equal("/fine-tune-callback", r.Path));
        var verifier = new StandardWebhook(secret);
        foreach (var request in requests)
        {
            verifier.Verify(request.Body, request.Headers); // throws unless the signature and timestamp check out
            using var body = JsonDocument.Parse(request.Body);
            Assert.Equal(["event", "data", "deliveredAt"], body.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Equal(jobId, body.RootElement.GetProperty("data").GetProperty("jobId").GetString());
            Assert.Equal("llmtune/tiny", body.RootElement.GetProperty("data").GetProperty("baseModel").GetString());
        }

        using var completed = JsonDocument.Parse(requests[1].Body);
        Assert.False(string.IsNullOrEmpty(completed.RootElement.GetProperty("data").GetProperty("artifact").GetString()));
        using var deployed = JsonDocument.Parse(requests[2].Body);
        Assert.StartsWith("ft:llmtune/tiny:", deployed.RootElement.GetProperty("data").GetProperty("model").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, requests.Select(r => r.WebhookId).Distinct().Count());

        // The log shows each one delivered with its attempt.
        var log = await host.DeliveriesAsync("&status=succeeded");
        Assert.Equal(3, log.Count);
        Assert.All(log, d => Assert.Equal(JsonValueKind.Null, d.GetProperty("endpointId").ValueKind));
    }

    [Fact]
    public async Task A_published_batch_completion_makes_one_signed_delivery_and_an_endpoint_rotation_signs_with_both_secrets()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var host = await WebhooksHost.StartAsync();
        using var client = host.Client();
        var (endpointId, oldSecret, workspace) = await host.CreateEndpointAsync(receiver.Url("/endpoint"), "batch.completed");
        var workspaceSecret = (await (await client.GetAsync("/v1/webhooks/secret")).Json()).GetProperty("secret").GetString()!;

        var batch = new BatchCompleted(workspace, "req_1", DateTimeOffset.UtcNow, "batch_e2e", "llmtune/tiny", 3, 1, receiver.Url("/batch-callback"));
        await host.PublishAsync(batch);
        await host.PublishAsync(batch);
        await Eventually.True(async () => (await host.DeliveriesAsync("&status=succeeded")).Count == 2, what: "both deliveries");

        var toUrl = Assert.Single(receiver.Requests, r => r.Path == "/batch-callback");
        new StandardWebhook(workspaceSecret).Verify(toUrl.Body, toUrl.Headers);
        var toEndpoint = Assert.Single(receiver.Requests, r => r.Path == "/endpoint");
        new StandardWebhook(oldSecret).Verify(toEndpoint.Body, toEndpoint.Headers);
        Assert.Equal(toUrl.WebhookId, toEndpoint.WebhookId); // one event, one id, at every destination
        using var data = JsonDocument.Parse(toUrl.Body);
        Assert.Equal("batch.completed", data.RootElement.GetProperty("event").GetString());
        Assert.Equal(3, data.RootElement.GetProperty("data").GetProperty("counts").GetProperty("succeeded").GetInt32());

        // Rotation: the new secret is shown once; during the overlap both signatures are sent.
        var rotated = await (await client.PostAsync($"/v1/webhooks/endpoints/{endpointId}/rotate-secret", null)).Json();
        var newSecret = rotated.GetProperty("secret").GetString()!;
        Assert.NotEqual(oldSecret, newSecret);
        Assert.Equal(JsonValueKind.Null, (await (await client.GetAsync($"/v1/webhooks/endpoints/{endpointId}")).Json()).GetProperty("secret").ValueKind);
        var test = await (await client.PostAsync($"/v1/webhooks/endpoints/{endpointId}/test", null)).Json(HttpStatusCode.Accepted);
        await host.WaitForDeliveryAsync(test.GetProperty("id").GetString()!, d => d.GetProperty("status").GetString() == "succeeded", "the test event");
        var signed = receiver.Requests[^1];
        Assert.Equal("webhook.test", signed.Event);
        var signatures = signed.Headers["webhook-signature"].ToString().Split(' ');
        Assert.Equal(2, signatures.Length);
        new StandardWebhook(newSecret).Verify(signed.Body, signed.Headers); // the newest signature comes first
        // StandardWebhooks 1.1.2 compares only the first signature of a list: the old secret's is checked on its own.
        signed.Headers["webhook-signature"] = signatures[1];
        new StandardWebhook(oldSecret).Verify(signed.Body, signed.Headers);

        // Stored encrypted: the plain secrets appear nowhere in the stored endpoint.
        var stored = (await host.Service<EndpointStore>().GetAsync(endpointId, CancellationToken.None))!;
        Assert.Equal(2, stored.Keys.Count);
        Assert.DoesNotContain(stored.Keys, k => k.Protected.Contains(newSecret[6..], StringComparison.Ordinal) || k.Protected.Contains(oldSecret[6..], StringComparison.Ordinal));

        // Another workspace sees none of it.
        using var other = host.Client();
        var list = await (await client.GetAsync("/v1/webhooks/endpoints")).Json();
        Assert.Single(list.GetProperty("data").EnumerateArray());
        await (await client.GetAsync("/v1/webhooks/deliveries/whd_unknown")).AssertError(HttpStatusCode.NotFound, "delivery_not_found");
    }

    private static async Task<string> UploadAsync(HttpClient client, string jsonl)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("fine-tune"), "purpose");
        form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)), "file", "data.jsonl");
        return (await (await client.PostAsync("/v1/files", form)).Json()).GetProperty("id").GetString()!;
    }

    private static string Dataset(int lines)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            builder.AppendLine(JsonSerializer.Serialize(new { prompt = $"Tell me the secret word, number {i}.", completion = "pineapple" }));
        }

        return builder.ToString();
    }
}
