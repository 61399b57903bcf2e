using System.Net;
using System.Net.Http.Json;
using System.Text;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests;

/// <summary>Files and jobs API: shapes, workspace isolation, pagination and every bad input's error.</summary>
public sealed class JobApiTests(SharedHost fixture) : IClassFixture<SharedHost>
{
    private FinetuneHost Host => fixture.Host;

    private static object Body(string dataset, string baseModel = FinetuneHost.Small, string method = "sft", object? hyper = null, string? webhookUrl = null) => new
    {
        baseModel,
        dataset,
        trainingMethod = method,
        hyperparameters = hyper ?? new { learningRate = 0.001, epochs = 1, batchSize = 4 },
        webhookUrl,
    };

    [Fact]
    public async Task Upload_list_get_and_delete_a_file_within_the_workspace_only()
    {
        using var client = Host.Client();
        var id = await client.UploadAsync(FinetuneApi.SecretWordDataset(4), "words.jsonl");
        Assert.StartsWith("file_", id);

        var file = await (await client.GetAsync($"/v1/files/{id}")).Json();
        Assert.Equal("words.jsonl", file.GetProperty("filename").GetString());
        Assert.Equal("fine-tune", file.GetProperty("purpose").GetString());
        Assert.Equal(Encoding.UTF8.GetByteCount(FinetuneApi.SecretWordDataset(4)), file.GetProperty("bytes").GetInt64());
        // OpenAI's file object, so SDKs read it: created_at in Unix seconds and status processed.
        Assert.Equal("file", file.GetProperty("object").GetString());
        Assert.Equal("processed", file.GetProperty("status").GetString());
        Assert.InRange(file.GetProperty("created_at").GetInt64(), DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds());
        var list = await (await client.GetAsync("/v1/files")).Json();
        Assert.Contains(list.GetProperty("data").EnumerateArray(), f => f.GetProperty("id").GetString() == id);

        using var other = Host.Client(await Host.CreateWorkspaceKeyAsync("files-other"));
        await (await other.GetAsync($"/v1/files/{id}")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        await (await other.DeleteAsync($"/v1/files/{id}")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        Assert.Empty((await (await other.GetAsync("/v1/files")).Json()).GetProperty("data").EnumerateArray());

        var deleted = await (await client.DeleteAsync($"/v1/files/{id}")).Json();
        Assert.True(deleted.GetProperty("deleted").GetBoolean());
        await (await client.GetAsync($"/v1/files/{id}")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        Assert.False(File.Exists(Path.Combine(Host.ArtifactsPath, "files", id)));
    }

    [Fact]
    public async Task Bad_uploads_answer_400_or_413()
    {
        using var client = Host.Client();
        using (var form = new MultipartFormDataContent())
        {
            form.Add(new StringContent("assistants"), "purpose");
            form.Add(new ByteArrayContent("{}"u8.ToArray()), "file", "x.jsonl");
            await (await client.PostAsync("/v1/files", form)).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "purpose");
        }

        using (var form = new MultipartFormDataContent())
        {
            form.Add(new StringContent("fine-tune"), "purpose");
            await (await client.PostAsync("/v1/files", form)).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "file");
        }

        using (var form = new MultipartFormDataContent())
        {
            form.Add(new StringContent("fine-tune"), "purpose");
            form.Add(new ByteArrayContent(new byte[5000]), "file", "big.jsonl"); // the limit is 4096 in this host
            await (await client.PostAsync("/v1/files", form)).AssertError(HttpStatusCode.RequestEntityTooLarge, "file_too_large");
        }

        // The operation declares its multipart body, so routing refuses other content types.
        await (await client.PostAsJsonAsync("/v1/files", new { purpose = "fine-tune" })).AssertError(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        Assert.Empty(Directory.Exists(Path.Combine(Host.ArtifactsPath, "files"))
            ? Directory.GetFiles(Path.Combine(Host.ArtifactsPath, "files"), "*.tmp")
            : []);
    }

    [Fact]
    public async Task Each_bad_job_request_answers_its_error()
    {
        using var client = Host.Client();
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(4));

        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, method: "dpo"))).AssertError(HttpStatusCode.BadRequest, "unsupported_training_method", "trainingMethod");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, baseModel: "meta-llama/Llama-3.3-70B-Instruct"))).AssertError(HttpStatusCode.NotFound, "model_not_found", "baseModel");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { learningRate = 5.0 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.learningRate");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { learningRate = 0.0 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.learningRate");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { epochs = 0 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.epochs");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { epochs = 1000 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.epochs");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { batchSize = 100000 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.batchSize");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { adapter = "qlora" }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.adapter");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { adapter = "full", loraRank = 8 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.loraRank");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { loraRank = 0 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.loraRank");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, hyper: new { loraRank = 4096 }))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "hyperparameters.loraRank");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, webhookUrl: "http://app.example.com/hook"))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "webhookUrl");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body(file, webhookUrl: "not a url"))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "webhookUrl");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body("ftp://example.com/data.jsonl"))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "dataset");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body("http://example.com/data.jsonl"))).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "dataset");
        await (await client.PostAsJsonAsync("/v1/fine-tune", Body("file_doesnotexist0000000000"))).AssertError(HttpStatusCode.NotFound, "file_not_found", "dataset");
        await (await client.PostAsJsonAsync("/v1/fine-tune", new { dataset = file })).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "baseModel");
        await (await client.PostAsync("/v1/fine-tune", new StringContent("{not json", Encoding.UTF8, "application/json"))).AssertError(HttpStatusCode.BadRequest);

        // Another workspace cannot train on this workspace's file.
        using var other = Host.Client(await Host.CreateWorkspaceKeyAsync("jobs-bad-input"));
        await (await other.PostAsJsonAsync("/v1/fine-tune", Body(file))).AssertError(HttpStatusCode.NotFound, "file_not_found", "dataset");

        // Allow-listed webhook hosts may use http; https always passes.
        await client.CreateJobAsync(Body($"llmtune://files/{file}", webhookUrl: "http://hooks.internal/finetune"));
        await client.CreateJobAsync(Body(file, webhookUrl: "https://app.example.com/fine-tune-callback"));
    }

    [Fact]
    public async Task A_job_has_the_seed_shape_and_is_invisible_to_other_workspaces()
    {
        using var client = Host.Client();
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(6));
        var created = await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            trainingMethod = "sft",
            hyperparameters = new { learningRate = 0.001, epochs = 2, batchSize = 4 },
        });
        var id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("job_", id);
        Assert.Contains(created.GetProperty("status").GetString(), new[] { "queued", "validating", "training" });
        Assert.Equal(2, created.GetProperty("epochs").GetProperty("total").GetInt32());
        Assert.Equal(0, created.GetProperty("progress").GetDouble());
        var metrics = created.GetProperty("metrics");
        Assert.True(metrics.TryGetProperty("loss", out _) && metrics.TryGetProperty("evalLoss", out _) && metrics.TryGetProperty("tokensPerSecond", out _));
        Assert.EndsWith("Z", created.GetProperty("createdAt").GetString());
        Assert.True(created.TryGetProperty("updatedAt", out _));
        Assert.False(created.TryGetProperty("finishedAt", out _));
        Assert.False(created.TryGetProperty("error", out _));
        Assert.Equal(FinetuneHost.Small, created.GetProperty("baseModel").GetString());
        var hyper = created.GetProperty("hyperparameters");
        Assert.Equal(0.001, hyper.GetProperty("learningRate").GetDouble(), 6);
        Assert.Equal(4, hyper.GetProperty("batchSize").GetInt32());
        Assert.Equal("lora", hyper.GetProperty("adapter").GetString());
        Assert.Equal(8, hyper.GetProperty("loraRank").GetInt32());

        using var other = Host.Client(await Host.CreateWorkspaceKeyAsync("jobs-other"));
        await (await other.GetAsync($"/v1/fine-tune/{id}")).AssertError(HttpStatusCode.NotFound, "job_not_found");
        await (await other.GetAsync($"/v1/fine-tune/{id}/events")).AssertError(HttpStatusCode.NotFound, "job_not_found");
        await (await other.PostAsync($"/v1/fine-tune/{id}/cancel", null)).AssertError(HttpStatusCode.NotFound, "job_not_found");
        Assert.Empty((await (await other.GetAsync("/v1/fine-tune")).Json()).GetProperty("data").EnumerateArray());
        await (await client.GetAsync("/v1/fine-tune/job_unknown")).AssertError(HttpStatusCode.NotFound, "job_not_found");

        var done = await client.WaitForStatusAsync(id, TimeSpan.FromMinutes(2), "completed", "failed");
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(100, done.GetProperty("progress").GetDouble());
        Assert.Equal(2, done.GetProperty("epochs").GetProperty("current").GetInt32());
        Assert.True(done.TryGetProperty("finishedAt", out _));
        await (await client.PostAsync($"/v1/fine-tune/{id}/cancel", null)).AssertError(HttpStatusCode.Conflict, "job_not_cancellable");
    }

    [Fact]
    public async Task Jobs_list_newest_first_with_cursor_pages()
    {
        using var client = Host.Client(await Host.CreateWorkspaceKeyAsync("jobs-list"));
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(4));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await client.CreateJobAsync(Body(file))).GetProperty("id").GetString()!);
            await client.PostAsync($"/v1/fine-tune/{ids[^1]}/cancel", null); // keep the worker free for other tests
        }

        var first = await (await client.GetAsync("/v1/fine-tune?limit=2")).Json();
        Assert.True(first.GetProperty("hasMore").GetBoolean());
        var second = await (await client.GetAsync($"/v1/fine-tune?limit=2&cursor={Uri.EscapeDataString(first.GetProperty("nextCursor").GetString()!)}")).Json();
        Assert.False(second.GetProperty("hasMore").GetBoolean());
        var listed = first.GetProperty("data").EnumerateArray().Concat(second.GetProperty("data").EnumerateArray()).Select(j => j.GetProperty("id").GetString()).ToList();
        Assert.Equal(Enumerable.Reverse(ids), listed);
        await (await client.GetAsync("/v1/fine-tune?limit=0")).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "limit");
    }
}
