using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Batch.Tests.Support;
using LLMTune.Contracts;
using OpenAI;
using OpenAI.Files;

#pragma warning disable OPENAI001 // the SDK marks its Batch API experimental

namespace LLMTune.Batch.Tests;

/// <summary>OpenAI's Batch API over the Files API on the bundled model: the official .NET SDK end to end, and validation.</summary>
public sealed class OpenAiBatchTests(SharedBatchHost fixture) : IClassFixture<SharedBatchHost>
{
    private BatchHost Host => fixture.Host;

    private OpenAIClient Sdk(string? key = null) =>
        new(new ApiKeyCredential(key ?? Host.Key), new OpenAIClientOptions { Endpoint = new Uri(Host.Host.Address, "v1") });

    private static string Line(string customId, object body, string url = "/v1/chat/completions") =>
        JsonSerializer.Serialize(new { custom_id = customId, method = "POST", url, body });

    private static object Chat(string text, object? extra = null) => extra ?? new
    {
        model = BatchHost.Tiny,
        messages = new[] { new { role = "user", content = text } },
        max_tokens = 6,
        temperature = 0,
    };

    [Fact]
    public async Task Official_sdk_uploads_a_file_runs_a_batch_to_completion_and_reads_the_output_and_error_files()
    {
        var client = Sdk();
        var files = client.GetOpenAIFileClient();
        var jsonl = string.Join('\n',
            Line("first", Chat("Say hello.")),
            Line("second", Chat("Name a colour.")),
            Line("too-hot", new { model = BatchHost.Tiny, messages = new[] { new { role = "user", content = "Hi" } }, temperature = 5 })) + "\n";
        OpenAIFile input = await files.UploadFileAsync(BinaryData.FromString(jsonl), "requests.jsonl", FileUploadPurpose.Batch);
        Assert.StartsWith("file_", input.Id);
        // The SDK reads our file object: its size, purpose and creation time (Unix seconds) come through.
        Assert.Equal(Encoding.UTF8.GetByteCount(jsonl), input.SizeInBytesLong);
        Assert.Equal(FilePurpose.Batch, input.Purpose);
        Assert.InRange(input.CreatedAt, DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddMinutes(1));
        OpenAIFile listed = await files.GetFileAsync(input.Id);
        Assert.Equal(input.CreatedAt, listed.CreatedAt);

        var batches = client.GetBatchClient();
        var operation = await batches.CreateBatchAsync(
            BinaryContent.Create(BinaryData.FromObjectAsJson(new { input_file_id = input.Id, endpoint = "/v1/chat/completions", completion_window = "24h", metadata = new { run = "sdk" } })),
            waitUntilCompleted: false);
        Assert.StartsWith("batch_", operation.BatchId);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await operation.WaitForCompletionAsync(cancel.Token);

        using var batch = JsonDocument.Parse((await batches.GetBatchAsync(operation.BatchId, new RequestOptions())).GetRawResponse().Content);
        var root = batch.RootElement;
        Assert.Equal("completed", root.GetProperty("status").GetString());
        Assert.Equal("batch", root.GetProperty("object").GetString());
        Assert.Equal(input.Id, root.GetProperty("input_file_id").GetString());
        Assert.Equal("sdk", root.GetProperty("metadata").GetProperty("run").GetString());
        var counts = root.GetProperty("request_counts");
        Assert.Equal((3, 2, 1), (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()));
        Assert.True(root.GetProperty("completed_at").GetInt64() >= root.GetProperty("created_at").GetInt64());

        var output = (await files.DownloadFileAsync(root.GetProperty("output_file_id").GetString()!)).Value.ToString();
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["first", "second"], lines.Select(l => l.GetProperty("custom_id").GetString()));
        foreach (var line in lines)
        {
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            var body = response.GetProperty("body");
            Assert.Equal("chat.completion", body.GetProperty("object").GetString());
            Assert.Equal(BatchHost.Tiny, body.GetProperty("model").GetString());
            Assert.Equal("assistant", body.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());
            Assert.InRange(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 6);
        }

        var errors = (await files.DownloadFileAsync(root.GetProperty("error_file_id").GetString()!)).Value.ToString();
        var error = JsonDocument.Parse(errors.Trim()).RootElement;
        Assert.Equal("too-hot", error.GetProperty("custom_id").GetString());
        Assert.Equal(400, error.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("temperature", error.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("param").GetString());

        // Each item that ran was metered once, with the batch's id (billed per item).
        await Eventually.True(() => Host.Published.Of<InferenceCompleted>().Count(e => e.BatchId == operation.BatchId) == 2,
            TimeSpan.FromSeconds(30), "two metered items");
        Assert.All(Host.Published.Of<InferenceCompleted>().Where(e => e.BatchId == operation.BatchId), e => Assert.InRange(e.CompletionTokens, 1, 6));

        // A finished batch's output file is listed by id, and cannot be cancelled.
        using var http = Host.Client();
        var file = await (await http.GetAsync($"/v1/files/{root.GetProperty("output_file_id").GetString()}")).Json();
        Assert.Equal("batch_output", file.GetProperty("purpose").GetString());
        Assert.Equal(Encoding.UTF8.GetByteCount(output), file.GetProperty("bytes").GetInt64());
        await (await http.PostAsync($"/v1/batches/{operation.BatchId}/cancel", null)).AssertError(HttpStatusCode.Conflict, "batch_finished");
    }

    [Fact]
    public async Task Completions_batches_list_newest_first_with_after_and_limit()
    {
        using var http = Host.Client();
        var fileId = await UploadAsync(http, Line("c1", new { model = BatchHost.Tiny, prompt = "Once upon", max_tokens = 4, temperature = 0 }, "/v1/completions"));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var created = await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h" })).Json();
            Assert.Equal("validating", created.GetProperty("status").GetString());
            ids.Add(created.GetProperty("id").GetString()!);
        }

        foreach (var id in ids)
        {
            var done = await CompletedAsync(http, id);
            var content = await (await http.GetAsync($"/v1/files/{done.GetProperty("output_file_id").GetString()}/content")).Content.ReadAsStringAsync();
            var body = JsonDocument.Parse(content.Trim()).RootElement.GetProperty("response").GetProperty("body");
            Assert.Equal("text_completion", body.GetProperty("object").GetString());
            Assert.Equal(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);
        }

        ids.Reverse(); // newest first
        var first = await (await http.GetAsync("/v1/batches?limit=2")).Json();
        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.True(first.GetProperty("has_more").GetBoolean());
        var page1 = first.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()!).ToList();
        Assert.Equal(ids[..2], page1);
        var second = await (await http.GetAsync($"/v1/batches?limit=2&after={first.GetProperty("last_id").GetString()}")).Json();
        Assert.Equal(ids[2], second.GetProperty("data")[0].GetProperty("id").GetString());
        await (await http.GetAsync("/v1/batches?limit=0")).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "limit");
        await (await http.GetAsync("/v1/batches?after=batch_nope")).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "after");
    }

    [Fact]
    public async Task Bad_input_files_are_refused_naming_the_line_and_other_workspaces_get_404()
    {
        using var http = Host.Client();
        var good = Line("ok", Chat("Hi"));

        async Task Refused(string jsonl, string code, string? contains = null)
        {
            var fileId = await UploadAsync(http, jsonl);
            var error = await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" }))
                .AssertError(HttpStatusCode.BadRequest, code, "input_file_id");
            if (contains is not null)
            {
                Assert.Contains(contains, error.GetProperty("message").GetString());
            }
        }

        await Refused(good + "\n{not json", "invalid_input_file", "Line 2");
        await Refused(good + "\n" + Line("x", Chat("Hi"), "/v1/embeddings"), "invalid_url", "Line 2");
        await Refused(good + "\n" + good, "duplicate_custom_id", "Line 2");
        await Refused(Line("x", new { model = "other/model", prompt = "x" }) + "\n" + good, "mixed_models");
        await Refused(JsonSerializer.Serialize(new { custom_id = "x", method = "GET", url = "/v1/chat/completions", body = new { model = BatchHost.Tiny } }), "invalid_input_file", "POST");
        await Refused("\n\n", "invalid_parameter");

        var fileId = await UploadAsync(http, good);
        await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/embeddings", completion_window = "24h" }))
            .AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "endpoint");
        await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "1h" }))
            .AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "completion_window");
        await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = "file_unknown", endpoint = "/v1/chat/completions", completion_window = "24h" }))
            .AssertError(HttpStatusCode.NotFound, "file_not_found", "input_file_id");

        // A fine-tune dataset is not a batch input; an unknown model is 404 as for native batches.
        using (var form = new MultipartFormDataContent { { new StringContent("fine-tune"), "purpose" }, { new StringContent(good), "file", "data.jsonl" } })
        {
            var dataset = (await (await http.PostAsync("/v1/files", form)).Json()).GetProperty("id").GetString();
            await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = dataset, endpoint = "/v1/chat/completions", completion_window = "24h" }))
                .AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "input_file_id");
        }

        var unknownModel = await UploadAsync(http, Line("x", new { model = "no/such-model", messages = new[] { new { role = "user", content = "Hi" } } }));
        await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = unknownModel, endpoint = "/v1/chat/completions", completion_window = "24h" }))
            .AssertError(HttpStatusCode.NotFound, "model_not_found");

        // Another workspace sees neither the file, nor the batch, nor its output.
        var created = await (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" })).Json();
        var batchId = created.GetProperty("id").GetString()!;
        var done = await CompletedAsync(http, batchId);
        var outputId = done.GetProperty("output_file_id").GetString()!;
        using var other = Host.Client(await Host.CreateWorkspaceKeyAsync("openai-batch-other"));
        await (await other.PostAsJsonAsync("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" }))
            .AssertError(HttpStatusCode.NotFound, "file_not_found");
        await (await other.GetAsync($"/v1/batches/{batchId}")).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        await (await other.PostAsync($"/v1/batches/{batchId}/cancel", null)).AssertError(HttpStatusCode.NotFound, "batch_not_found");
        await (await other.GetAsync($"/v1/files/{outputId}/content")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        await (await other.GetAsync($"/v1/files/{fileId}/content")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        Assert.Empty((await (await other.GetAsync("/v1/batches")).Json()).GetProperty("data").EnumerateArray());
        await (await http.GetAsync($"/v1/files/{BatchIdToErrorFile(batchId)}/content")).AssertError(HttpStatusCode.NotFound, "file_not_found");
        Assert.Equal(good + "\n", await (await http.GetAsync($"/v1/files/{fileId}/content")).Content.ReadAsStringAsync());
    }

    private static async Task<JsonElement> CompletedAsync(HttpClient http, string batchId) =>
        (await Eventually.Get<JsonElement?>(async () => await (await http.GetAsync($"/v1/batches/{batchId}")).Json(),
            b => b?.GetProperty("status").GetString() == "completed", TimeSpan.FromSeconds(60), $"batch {batchId} to complete"))!.Value;

    private static string BatchIdToErrorFile(string batchId) => $"file_{batchId}_errors";

    private static async Task<string> UploadAsync(HttpClient http, string jsonl)
    {
        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl.EndsWith('\n') ? jsonl : jsonl + "\n")) { Headers = { ContentType = new MediaTypeHeaderValue("application/jsonl") } }, "file", "batch.jsonl" },
        };
        return (await (await http.PostAsync("/v1/files", form)).Json()).GetProperty("id").GetString()!;
    }
}
