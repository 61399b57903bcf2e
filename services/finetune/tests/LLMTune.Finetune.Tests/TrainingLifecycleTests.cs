using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Training;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests;

/// <summary>
/// End to end on the running host: a dataset teaches the tiny model something new, the job trains and reports
/// loss/evalLoss, the inference service deploys the result for the workspace only, and the events come in order.
/// </summary>
public sealed class TrainingLifecycleTests
{
    [Fact]
    public async Task A_fine_tune_teaches_a_new_behaviour_deploys_it_for_the_workspace_and_announces_each_step_once()
    {
        if (FinetuneTestModels.Bundled is null)
        {
            Assert.Skip("models/llmtune-tiny.gguf has not been built yet.");
        }

        await using var host = await FinetuneHost.StartAsync();
        using var client = host.Client();

        // The bundled model never saw "Is 37 even or odd?"; after the fine-tune it answers in the task's form.
        var (dataset, epochs, probes) = ParityTask();
        var file = await client.UploadAsync(dataset);
        var job = await client.CreateJobAsync(new
        {
            baseModel = "llmtune/tiny",
            dataset = $"llmtune://files/{file}",
            trainingMethod = "sft",
            hyperparameters = new { learningRate = 0.01, epochs, batchSize = 8 },
            webhookUrl = "https://app.example.com/fine-tune-callback",
        });
        var jobId = job.GetProperty("id").GetString()!;

        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(4), "completed", "failed", "cancelled");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());
        var metrics = done.GetProperty("metrics");
        Assert.True(metrics.GetProperty("loss").GetDouble() > 0);
        Assert.True(metrics.GetProperty("tokensPerSecond").GetDouble() > 0);
        Assert.Equal(epochs, done.GetProperty("epochs").GetProperty("current").GetInt32());

        // evalLoss is reported before training (the base) and after every epoch; the last is at least 30% below the first.
        var events = await client.EventsAsync(jobId);
        var evalLosses = events.Where(e => e.TryGetProperty("metrics", out var m) && m.GetProperty("evalLoss").ValueKind == JsonValueKind.Number)
            .Select(e => e.GetProperty("metrics").GetProperty("evalLoss").GetDouble()).ToList();
        Assert.True(evalLosses.Count >= 2, $"eval losses: {string.Join(", ", evalLosses)}");
        var finalEval = metrics.GetProperty("evalLoss").GetDouble();
        Assert.Equal(evalLosses[^1], finalEval, tolerance: 1e-4);
        Assert.True(finalEval <= 0.7 * evalLosses[0], $"eval loss {evalLosses[0]:F3} -> {finalEval:F3}");
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "progress");
        Assert.Equal(["queued", "validating", "training", "completed"], events.Where(e => e.GetProperty("type").GetString() == "status" && e.TryGetProperty("status", out _))
            .Select(e => e.GetProperty("status").GetString()!).ToArray());

        // Deployed for this workspace only.
        var deployed = await Eventually.Get<JsonElement?>(async () => await client.GetJobAsync(jobId),
            j => j is { } x && x.TryGetProperty("fineTunedModel", out _), TimeSpan.FromSeconds(60), "fineTunedModel");
        var modelId = deployed!.Value.GetProperty("fineTunedModel").GetString()!;
        Assert.Equal($"ft:llmtune/tiny:{WorkspaceOf(host, jobId)}:{jobId}", modelId);
        var models = await (await client.GetAsync("/v1/models")).Json();
        Assert.Contains(models.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == modelId);
        using var other = host.Client(await host.CreateWorkspaceKeyAsync("not-the-owner"));
        Assert.DoesNotContain((await (await other.GetAsync("/v1/models")).Json()).GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == modelId);
        await (await other.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt = probes[0].Prompt, temperature = 0, maxTokens = 8 })).AssertError(HttpStatusCode.NotFound);

        // The taught behaviour, on prompts the dataset never contained; the base model does not show it.
        var tunedOnTask = 0;
        var baseOnTask = 0;
        var tunedRight = 0;
        var answers = new List<string>();
        foreach (var (prompt, answer) in probes)
        {
            var tuned = await AnswerAsync(client, modelId, prompt);
            var untuned = await AnswerAsync(client, "llmtune/tiny", prompt);
            answers.Add($"'{prompt}' -> base '{untuned}', tuned '{tuned}'");
            tunedOnTask += tuned is "even" or "odd" ? 1 : 0;
            baseOnTask += untuned is "even" or "odd" ? 1 : 0;
            tunedRight += tuned == answer ? 1 : 0;
        }

        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, answers));

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"eval {string.Join(" -> ", evalLosses.Select(l => l.ToString("F3")))}; answers in the task's form: base {baseOnTask}/{probes.Length}, tuned {tunedOnTask}/{probes.Length} ({tunedRight} right)");
        Assert.True(tunedOnTask > baseOnTask && tunedOnTask >= probes.Length * 0.8, $"answers in the task's form {baseOnTask} -> {tunedOnTask} of {probes.Length}");

        // TrainingStarted, TrainingCompleted and ModelDeployed: once each, in that order.
        var lifecycle = host.Events.All.Where(e => e switch
        {
            TrainingStarted s => s.JobId == jobId,
            TrainingCompleted c => c.JobId == jobId,
            ModelDeployed d => d.JobId == jobId,
            _ => false,
        }).Select(e => e.GetType().Name).ToArray();
        Assert.Equal(["TrainingStarted", "TrainingCompleted", "ModelDeployed"], lifecycle);
        var completed = host.Events.Of<TrainingCompleted>().Single(c => c.JobId == jobId);
        Assert.Equal("lora", completed.ArtifactKind);
        var artifact = new Uri(completed.ArtifactUri);
        Assert.True(artifact.IsFile && artifact.LocalPath.StartsWith(host.ArtifactsPath, StringComparison.Ordinal) && File.Exists(artifact.LocalPath), completed.ArtifactUri);
        // Training leaves nothing behind: no scratch folder, no mirrored checkpoint.
        // (clean-up runs just after the completion is recorded and announced)
        await Eventually.True(() => !Directory.Exists(Path.Combine(host.WorkPath, "jobs", jobId)), TimeSpan.FromSeconds(10), "the scratch folder to go");
        await Eventually.True(() => !File.Exists(Path.Combine(host.ArtifactsPath, "jobs", jobId, "checkpoint.gguf")), TimeSpan.FromSeconds(10), "the mirrored checkpoint to go");
        Assert.Equal("https://app.example.com/fine-tune-callback", completed.WebhookUrl);
        Assert.Single(host.Events.Of<TrainingQueued>(), q => q.JobId == jobId);
        Assert.Contains(host.Events.Of<TrainingProgressed>(), p => p.JobId == jobId);

        // Billing charges the trained tokens from the event: every epoch of the training set, at the plan's price
        // (the default workspace is on scale, $2 per million trained tokens).
        Assert.True(completed.TrainedTokens >= epochs * 100, $"trained tokens {completed.TrainedTokens}");
        var trained = await Eventually.Get(async () => await (await client.GetAsync("/v1/usage?groupBy=model")).Json(),
            u => u.GetProperty("total").GetProperty("trainedTokens").GetInt64() > 0, TimeSpan.FromSeconds(30), "the fine-tune's charge");
        var baseRow = trained.GetProperty("data").EnumerateArray().Single(r => r.GetProperty("model").GetString() == "llmtune/tiny");
        Assert.Equal(completed.TrainedTokens, baseRow.GetProperty("trainedTokens").GetInt64());
        Assert.True(baseRow.GetProperty("costUsd").GetDecimal() >= completed.TrainedTokens * 2m / 1_000_000m, baseRow.ToString());
    }

    [Fact]
    public async Task A_job_can_ask_for_a_full_fine_tune_which_is_deployed_as_its_own_model()
    {
        await using var host = await FinetuneHost.StartAsync();
        using var client = host.Client();
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(12));
        var created = await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            hyperparameters = new { learningRate = 0.01, epochs = 1, batchSize = 4, adapter = "full" },
        });
        var jobId = created.GetProperty("id").GetString()!;
        Assert.Equal("full", created.GetProperty("hyperparameters").GetProperty("adapter").GetString());
        Assert.False(created.GetProperty("hyperparameters").TryGetProperty("loraRank", out _));

        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(2), "completed", "failed");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());
        Assert.Equal("full", host.Events.Of<TrainingCompleted>().Single(c => c.JobId == jobId).ArtifactKind);
        var model = (await Eventually.Get(async () => await client.GetJobAsync(jobId), j => j.TryGetProperty("fineTunedModel", out _), TimeSpan.FromSeconds(30), "fineTunedModel"))
            .GetProperty("fineTunedModel").GetString()!;
        var answer = await client.PostAsJsonAsync($"/v1/models/{model}/inference", new { prompt = "hello", maxTokens = 4 });
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
    }

    [Fact]
    public async Task Cancelling_during_training_stops_it_frees_the_slot_and_deploys_nothing()
    {
        await using var host = await FinetuneHost.StartAsync();
        using var client = host.Client();
        var file = await client.UploadAsync(FinetuneApi.SecretWordDataset(40));
        var jobId = (await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            hyperparameters = new { learningRate = 0.01, epochs = 100, batchSize = 4 },
        })).GetProperty("id").GetString()!;

        await Eventually.Get<JsonElement?>(async () => await client.GetJobAsync(jobId),
            j => j is { } x && x.GetProperty("status").GetString() == "training" && x.GetProperty("progress").GetDouble() > 0, TimeSpan.FromMinutes(1), "training progress");
        var cancelled = await (await client.PostAsync($"/v1/fine-tune/{jobId}/cancel", null)).Json();
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        Assert.True(cancelled.TryGetProperty("finishedAt", out _));

        var runtime = host.Service<JobRuntime>();
        await Eventually.True(() => !runtime.IsRunning(jobId), TimeSpan.FromSeconds(30), "the run to stop");
        Assert.False(Directory.Exists(Path.Combine(host.ArtifactsPath, "jobs", jobId)));
        Assert.False(Directory.Exists(Path.Combine(host.WorkPath, "jobs", jobId)));

        // The single worker slot is free: the next job runs to completion.
        var next = (await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            hyperparameters = new { learningRate = 0.01, epochs = 1, batchSize = 4 },
        })).GetProperty("id").GetString()!;
        Assert.Equal("completed", (await client.WaitForStatusAsync(next, TimeSpan.FromMinutes(2), "completed", "failed")).GetProperty("status").GetString());

        var after = await client.GetJobAsync(jobId);
        Assert.Equal("cancelled", after.GetProperty("status").GetString());
        Assert.False(after.TryGetProperty("fineTunedModel", out _));
        Assert.DoesNotContain(host.Events.Of<TrainingCompleted>(), c => c.JobId == jobId);
        Assert.DoesNotContain((await (await client.GetAsync("/v1/models")).Json()).GetProperty("data").EnumerateArray(),
            m => m.GetProperty("id").GetString()!.EndsWith(jobId, StringComparison.Ordinal));
        Assert.Contains(await client.EventsAsync(jobId), e => e.TryGetProperty("status", out var s) && s.GetString() == "cancelled");
    }

    [Fact]
    public async Task A_dataset_with_a_broken_line_7_fails_validation_naming_line_7()
    {
        await using var host = await FinetuneHost.StartAsync();
        using var client = host.Client();
        var lines = FinetuneApi.SecretWordDataset(10).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        lines[6] = "{\"prompt\": \"What is the secret word?\", \"completion\": }";
        var file = await client.UploadAsync(string.Join('\n', lines));
        var jobId = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = file })).GetProperty("id").GetString()!;

        var failed = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(1), "failed", "completed");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        var error = failed.GetProperty("error");
        Assert.Equal("validation_failed", error.GetProperty("code").GetString());
        Assert.Contains("line 7", error.GetProperty("message").GetString());
        Assert.DoesNotContain("line 6", error.GetProperty("message").GetString());
        var announced = await Eventually.Get(() => Task.FromResult<TrainingFailed?>(host.Events.Of<TrainingFailed>().SingleOrDefault(f => f.JobId == jobId)), f => f is not null);
        Assert.Equal("validation_failed", announced!.Code);
        Assert.DoesNotContain(host.Events.Of<TrainingStarted>(), s => s.JobId == jobId);

        // An empty dataset (only blank lines) is unusable.
        var blank = await client.UploadAsync("\n\n");
        var blankJob = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = blank })).GetProperty("id").GetString()!;
        var blankFailed = await client.WaitForStatusAsync(blankJob, TimeSpan.FromMinutes(1), "failed", "completed");
        Assert.Equal("validation_failed", blankFailed.GetProperty("error").GetProperty("code").GetString());
    }

    private static string WorkspaceOf(FinetuneHost host, string jobId) =>
        host.Service<Features.Jobs.JobStore>().GetAsync(jobId, CancellationToken.None).GetAwaiter().GetResult()!.WorkspaceId;

    private static async Task<string> AnswerAsync(HttpClient client, string model, string prompt)
    {
        var answer = await (await client.PostAsJsonAsync($"/v1/models/{model}/inference", new { prompt, temperature = 0, maxTokens = 12 })).Json();
        return answer.GetProperty("text").GetString()!.Trim();
    }

    /// <summary>"Is N even or odd?" in three phrasings for 300 numbers; the probes use numbers the dataset never contains.</summary>
    private static (string Dataset, int Epochs, (string Prompt, string Answer)[] Probes) ParityTask()
    {
        string[] phrasings = ["Is {0} even or odd?", "Is the number {0} odd or even?", "Even or odd: {0}?"];
        static string Answer(int n) => n % 2 == 0 ? "even" : "odd";
        var random = new Random(17);
        var numbers = Enumerable.Range(0, 1000).OrderBy(_ => random.Next()).ToList();
        var builder = new StringBuilder();
        foreach (var (number, i) in numbers.Skip(10).Take(300).Select((n, i) => (n, i)))
        {
            var prompt = string.Format(System.Globalization.CultureInfo.InvariantCulture, phrasings[i % phrasings.Length], number);
            builder.AppendLine(JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = prompt }, new { role = "assistant", content = Answer(number) } } }));
        }

        var probes = numbers.Take(10).Select((n, i) => (string.Format(System.Globalization.CultureInfo.InvariantCulture, phrasings[i % phrasings.Length], n), Answer(n))).ToArray();
        return (builder.ToString(), 8, probes);
    }
}
