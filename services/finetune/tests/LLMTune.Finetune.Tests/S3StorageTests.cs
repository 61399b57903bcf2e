using System.Net;
using System.Net.Http.Json;
using LLMTune.Contracts;
using LLMTune.Finetune.Tests.Support;
using LLMTune.Platform.Artifacts;

namespace LLMTune.Finetune.Tests;

/// <summary>
/// The production layout on a real S3-compatible server (test.sh starts one): artifacts in a bucket, datasets read
/// from <c>s3://</c>, the fine-tuned model served from the bucket, and a job that moves to another worker.
/// </summary>
public sealed class S3StorageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_s3_dataset_trains_with_artifacts_in_a_bucket_and_the_model_is_served_from_it()
    {
        var artifacts = await TestS3.NewBucketAsync(Ct);
        var datasets = await TestS3.NewBucketAsync(Ct);
        await TestS3.PutAsync(datasets, "teams/a/train.jsonl", FinetuneApi.SecretWordDataset(12), Ct);
        await using var host = await FinetuneHost.StartAsync(S3Settings(artifacts, datasets));
        using var client = host.Client();

        // Uploads go to the bucket, not to the local disk.
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(6));
        using var bucket = new S3ArtifactStore(artifacts);
        Assert.True(await bucket.ExistsAsync($"files/{file}", Ct));
        Assert.False(Directory.Exists(host.ArtifactsPath));

        var jobId = (await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = $"s3://{datasets.Bucket}/teams/a/train.jsonl",
            hyperparameters = new { learningRate = 0.01, epochs = 2, batchSize = 4 },
        })).GetProperty("id").GetString()!;
        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(2), "completed", "failed");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());

        var completed = host.Events.Of<TrainingCompleted>().Single(c => c.JobId == jobId);
        Assert.Equal($"s3://{artifacts.Bucket}/jobs/{jobId}/attempt-1/adapter.gguf", completed.ArtifactUri);
        Assert.True(await bucket.ExistsAsync($"jobs/{jobId}/dataset.jsonl", Ct));
        // Discarded just after the completion is recorded and announced.
        await Eventually.True(async () => !await bucket.ExistsAsync($"jobs/{jobId}/checkpoint.gguf", Ct), TimeSpan.FromSeconds(10), "the mirrored checkpoint to go");

        // Inference downloads the adapter from the bucket and serves it to the owner.
        var model = (await Eventually.Get(async () => await client.GetJobAsync(jobId), j => j.TryGetProperty("fineTunedModel", out _), TimeSpan.FromSeconds(30), "fineTunedModel"))
            .GetProperty("fineTunedModel").GetString()!;
        var answer = await client.PostAsJsonAsync($"/v1/models/{model}/inference", new { prompt = "hello", maxTokens = 4 });
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.True(File.Exists(Path.Combine(host.Host.DataDirectory, "artifact-cache", "objects", "jobs", jobId, "attempt-1", "adapter.gguf")));

        // The service's own bucket is not a dataset source: its credentials could read other workspaces' files there.
        await (await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = FinetuneHost.Small, dataset = $"s3://{artifacts.Bucket}/files/{file}" }, Ct))
            .AssertError(HttpStatusCode.BadRequest, "dataset_not_allowed", "dataset");

        // A missing object fails the job with a clear reason; the service carries on.
        var missing = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = $"s3://{datasets.Bucket}/teams/a/nope.jsonl" }))
            .GetProperty("id").GetString()!;
        var failed = await client.WaitForStatusAsync(missing, TimeSpan.FromMinutes(1), "failed", "completed");
        Assert.Equal("dataset_unavailable", failed.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("no such object", failed.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/fine-tune")).StatusCode);
    }

    [Fact]
    public async Task A_job_stopped_on_one_worker_resumes_on_another_from_the_checkpoint_in_the_bucket()
    {
        var artifacts = await TestS3.NewBucketAsync(Ct);
        using var bucket = new S3ArtifactStore(artifacts);
        var shared = Directory.CreateTempSubdirectory("llmtune-s3-shared-").FullName;
        var settings = S3Settings(artifacts, null);
        settings["Storage:LiteDbPath"] = Path.Combine(shared, "llmtune.db"); // one database, as with MongoDB in a cluster
        settings["Gateway:InitialWorkspace:KeyFile"] = Path.Combine(shared, "initial-api-key");

        string jobId, key;
        await using (var first = await FinetuneHost.StartAsync(settings))
        {
            key = (await File.ReadAllTextAsync(Path.Combine(shared, "initial-api-key"), Ct)).Trim();
            using var client = first.Client(key);
            jobId = await client.StartLongJobAsync();
            await Eventually.True(async () => await bucket.ExistsAsync($"jobs/{jobId}/checkpoint.gguf", Ct), TimeSpan.FromMinutes(1), "a checkpoint in the bucket");
        } // a graceful stop puts the job back in the queue

        // The second worker has its own, empty disk: the checkpoint can only come from the bucket.
        await using var second = await FinetuneHost.StartAsync(settings);
        Assert.NotEqual(Path.GetDirectoryName(second.WorkPath), shared);
        using var again = second.Client(key);
        var done = await again.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(3), "completed", "failed", "cancelled");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());
        var completion = (await again.EventsAsync(jobId)).Select(e => e.GetProperty("message").GetString()!).Last(m => m.StartsWith("Training completed", StringComparison.Ordinal));
        Assert.Matches("resumed from step [1-9]", completion);
    }

    [Fact]
    public async Task An_unreachable_artifact_bucket_shows_as_degraded_and_uploads_answer_503()
    {
        var artifacts = await TestS3.NewBucketAsync(Ct);
        await using (var host = await FinetuneHost.StartAsync(S3Settings(artifacts, null)))
        {
            var ready = await (await host.Host.Client().GetAsync("/readyz", Ct)).Json();
            Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("artifact-store").GetProperty("status").GetString());
        }

        artifacts.Bucket = "no-such-bucket-" + Guid.NewGuid().ToString("N")[..8];
        await using var broken = await FinetuneHost.StartAsync(S3Settings(artifacts, null));
        // Degraded, not unready: the replica still serves what it has.
        var report = await (await broken.Host.Client().GetAsync("/readyz", Ct)).Json();
        Assert.Equal("Degraded", report.GetProperty("status").GetString());
        var check = report.GetProperty("checks").GetProperty("artifact-store");
        Assert.Equal("Degraded", check.GetProperty("status").GetString());
        Assert.Contains("artifact bucket unreachable", check.GetProperty("description").GetString());

        // Uploads answer 503 in the error shape (not 500), and nothing is recorded.
        using var client = broken.Client();
        using var form = new MultipartFormDataContent { { new StringContent("fine-tune"), "purpose" }, { new StringContent(FinetuneApi.SecretWordDataset(3)), "file", "d.jsonl" } };
        await (await client.PostAsync("/v1/files", form, Ct)).AssertError(HttpStatusCode.ServiceUnavailable, "storage_unavailable");
        Assert.Empty((await (await client.GetAsync("/v1/files", Ct)).Json()).GetProperty("data").EnumerateArray());
    }

    private static Dictionary<string, string?> S3Settings(ArtifactS3Options artifacts, ArtifactS3Options? datasets)
    {
        var settings = TestS3.Settings(artifacts, "Artifacts:S3");
        settings["Artifacts:Provider"] = "S3";
        foreach (var (key, value) in datasets is null ? [] : TestS3.Settings(datasets, "Finetune:S3"))
        {
            settings[key] = value;
        }

        return settings;
    }
}
