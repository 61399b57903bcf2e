using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Finetune.Features.Training;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests.SmallDatasets;

/// <summary>Explicit values are honoured (with a warning when too few steps); a job whose eval loss rises stops early and deploys its best step.</summary>
public sealed class EarlyStoppingTests(TrainingHostFixture fixture) : IClassFixture<TrainingHostFixture>
{
    [Fact]
    public async Task Explicit_values_are_honoured_exactly_and_too_few_steps_get_a_warning_event()
    {
        using var client = fixture.Host.Client();
        var file = await client.UploadAsync(FactDataset.Jsonl());
        var jobId = (await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            trainingMethod = "sft",
            hyperparameters = new { learningRate = 0.0001, epochs = 3, batchSize = 8 },
        })).GetProperty("id").GetString()!;

        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(2), "completed", "failed");
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var hyper = done.GetProperty("hyperparameters");
        Assert.Equal(0.0001, hyper.GetProperty("learningRate").GetDouble(), 8);
        Assert.Equal(3, hyper.GetProperty("epochs").GetInt32());
        Assert.Equal(8, hyper.GetProperty("batchSize").GetInt32());
        Assert.Empty(hyper.GetProperty("auto").EnumerateArray());
        var warning = Assert.Single(await client.EventsAsync(jobId), e => e.GetProperty("type").GetString() == "warning");
        Assert.Contains("optimizer steps", warning.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_job_whose_eval_loss_rises_stops_early_and_the_served_model_is_the_best_step()
    {
        var host = fixture.Host;
        using var client = host.Client();
        var file = await client.UploadAsync(RandomCodes(48));
        var jobId = (await client.CreateJobAsync(new
        {
            baseModel = FinetuneHost.Small,
            dataset = file,
            hyperparameters = new { learningRate = 0.01, epochs = 80, batchSize = 4, adapter = "full", earlyStoppingPatience = 3 },
        })).GetProperty("id").GetString()!;

        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(4), "completed", "failed");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());
        Assert.True(done.GetProperty("stoppedEarly").GetBoolean(), done.ToString());
        Assert.True(done.GetProperty("epochs").GetProperty("current").GetInt32() < 80);

        // The last three evaluations came after the best one and were all worse.
        var evaluations = (await client.EventsAsync(jobId)).Where(e => e.GetProperty("type").GetString() == "evaluation" && e.GetProperty("step").GetInt32() > 0)
            .Select(e => (Step: e.GetProperty("step").GetInt32(), Eval: e.GetProperty("metrics").GetProperty("evalLoss").GetDouble())).ToList();
        var best = evaluations.MinBy(e => e.Eval);
        var deployed = done.GetProperty("deployedCheckpoint");
        Assert.Equal(best.Step, deployed.GetProperty("step").GetInt32());
        Assert.Equal(3, evaluations.Count(e => e.Step > best.Step));
        Assert.True(evaluations[^1].Eval > best.Eval, string.Join(", ", evaluations));

        // The file the inference service serves has the best step's eval loss on the held-out examples, not the last step's.
        var completed = host.Events.Of<TrainingCompleted>().Single(c => c.JobId == jobId);
        var job = (await host.Service<JobStore>().GetAsync(jobId, CancellationToken.None))!;
        var data = await host.Service<DatasetPreparer>().PrepareAsync(job, FinetuneTestModels.SmallPath, CancellationToken.None);
        var served = BaselineEvaluator.Evaluate(new Uri(completed.ArtifactUri).LocalPath, data.Eval, 128, 2, CancellationToken.None);
        TestContext.Current.TestOutputHelper?.WriteLine($"evaluations {string.Join(", ", evaluations.Select(e => $"{e.Step}:{e.Eval:F3}"))}; served {served:F4}");
        Assert.Equal(best.Eval, served, tolerance: 0.01);
        Assert.True(served < evaluations[^1].Eval - 0.01, $"served {served:F4}, last {evaluations[^1].Eval:F4}");
    }

    /// <summary>Random codes: nothing carries over from the training lines to the held-out ones, so learning them by heart makes the eval loss rise.</summary>
    private static string RandomCodes(int lines)
    {
        var random = new Random(5);
        var builder = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            var code = new string(Enumerable.Range(0, 10).Select(_ => (char)('a' + random.Next(26))).ToArray());
            builder.AppendLine(JsonSerializer.Serialize(new { prompt = $"Code of item {i}?", completion = code }));
        }

        return builder.ToString();
    }
}
