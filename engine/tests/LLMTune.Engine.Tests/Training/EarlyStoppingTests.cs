using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

public sealed class EarlyStoppingTests
{
    [Fact]
    public async Task A_rising_eval_loss_stops_the_run_after_its_patience_and_the_output_holds_the_best_evaluation()
    {
        // Held-out answers the training data contradicts (always token 13): the better the model learns the task, the higher their loss.
        var (train, _) = TrainingFixtures.ReversalTask(trainCount: 40, evalCount: 0);
        var eval = train.Take(8).Select(e => new TrainingExample([.. e.Tokens.Take(6), 13, 13, 13, 13, 12], promptLength: 6)).ToList();
        var dir = TrainingFixtures.NewDirectory("early-stop");
        var snapshots = Path.Combine(dir, "snapshots");
        var options = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Full, Path.Combine(dir, "model.gguf")) with
        {
            Epochs = 20,
            EarlyStoppingPatience = 2,
            OutputBestEvaluation = true,
            SnapshotDirectory = snapshots,
        };
        var progress = new ProgressLog();

        var result = await new LlamaTrainer().TrainAsync(options, train, eval, progress, TestContext.Current.CancellationToken);

        var evaluations = progress.Reports.Where(p => p.EvalLoss is not null).ToList();
        var best = evaluations.MinBy(p => p.EvalLoss!.Value)!;
        Assert.True(result.StoppedEarly);
        Assert.True(progress.Reports[^1].StoppedEarly);
        Assert.True(result.Steps < progress.Reports[^1].TotalSteps);
        Assert.Equal(2, evaluations.Count(p => p.Step > best.Step));
        Assert.Equal(best.Step, result.OutputStep);
        Assert.Equal(best.EvalLoss, result.OutputEvalLoss);

        // A snapshot for every new best only, and the output is the best one's weights.
        var snapshotted = progress.Reports.Where(p => p.SnapshotPath is not null).ToList();
        Assert.Equal(best.Step, snapshotted[^1].Step);
        Assert.All(snapshotted, p => Assert.True(File.Exists(p.SnapshotPath)));
        Assert.Equal(await File.ReadAllBytesAsync(snapshotted[^1].SnapshotPath!), await File.ReadAllBytesAsync(result.OutputPath));
    }
}
