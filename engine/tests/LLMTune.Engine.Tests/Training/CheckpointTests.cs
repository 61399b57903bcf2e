using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

public sealed class CheckpointTests
{
    [Fact]
    public async Task A_cancelled_run_leaves_no_artifact()
    {
        var (train, eval) = TrainingFixtures.ReversalTask(trainCount: 160, evalCount: 16);
        var dir = TrainingFixtures.NewDirectory("cancel");
        var checkpoints = Path.Combine(dir, "checkpoints");
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var options = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Full, Path.Combine(dir, "model.gguf")) with
        {
            MaxSteps = 40,
            CheckpointDirectory = checkpoints,
            CheckpointInterval = 2,
        };
        var progress = new ProgressLog(p =>
        {
            if (p.Step == 5)
            {
                cancellation.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LlamaTrainer().TrainAsync(options, train, eval, progress, cancellation.Token));

        Assert.Equal(5, progress.Reports.Count);
        Assert.Empty(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_resumed_run_continues_step_count_and_loss_from_its_checkpoint()
    {
        var (train, eval) = TrainingFixtures.ReversalTask(trainCount: 160, evalCount: 16);
        var dir = TrainingFixtures.NewDirectory("resume");
        var checkpoints = Path.Combine(dir, "checkpoints");
        var options = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Full, Path.Combine(dir, "model.gguf")) with
        {
            MaxSteps = 40,
            CheckpointDirectory = checkpoints,
            CheckpointInterval = 10,
            KeepCheckpointsOnCancel = true, // as when a host shuts down mid-run
        };

        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var interrupted = new ProgressLog(p =>
        {
            if (p.Step == 25)
            {
                cancellation.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LlamaTrainer().TrainAsync(options, train, eval, interrupted, cancellation.Token));
        Assert.True(File.Exists(Path.Combine(checkpoints, "checkpoint.gguf")));
        Assert.False(File.Exists(options.OutputPath));

        var resumed = new ProgressLog();
        var result = await new LlamaTrainer().TrainAsync(options, train, eval, resumed, TestContext.Current.CancellationToken);

        Assert.Equal(20, result.ResumedFromStep);
        Assert.Equal(40, result.Steps);
        Assert.Equal(Enumerable.Range(21, 20), resumed.Reports.Select(p => p.Step));
        Assert.Equal(interrupted.Reports[20].Epoch, resumed.Reports[0].Epoch);
        Assert.Equal(interrupted.Reports[20].LearningRate, resumed.Reports[0].LearningRate);

        // The loss carries on from where the checkpoint left it instead of starting over.
        var firstLoss = interrupted.Reports[0].Loss;
        var checkpointLoss = interrupted.Reports[19].Loss;
        var resumedLoss = resumed.Reports[0].Loss;
        Assert.True(firstLoss - checkpointLoss > 0.5f, $"training must have made progress before the checkpoint ({firstLoss} -> {checkpointLoss})");
        Assert.True(Math.Abs(resumedLoss - interrupted.Reports[20].Loss) < 0.25f * (firstLoss - checkpointLoss),
            $"resumed loss {resumedLoss} vs uninterrupted {interrupted.Reports[20].Loss} (first {firstLoss}, at checkpoint {checkpointLoss})");

        Assert.True(File.Exists(options.OutputPath));
        Assert.False(File.Exists(Path.Combine(checkpoints, "checkpoint.gguf")), "a finished run removes its checkpoint");
    }

    [Fact]
    public async Task A_checkpoint_from_another_run_is_refused()
    {
        var (train, eval) = TrainingFixtures.ReversalTask(trainCount: 64, evalCount: 8);
        var dir = TrainingFixtures.NewDirectory("mismatch");
        var checkpoints = Path.Combine(dir, "checkpoints");
        var options = TrainingFixtures.Options(TrainingFixtures.TrainableModelPath, TrainingMode.Lora, Path.Combine(dir, "adapter.gguf")) with
        {
            MaxSteps = 8,
            CheckpointDirectory = checkpoints,
            CheckpointInterval = 2,
            KeepCheckpointsOnCancel = true,
        };
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var progress = new ProgressLog(p =>
        {
            if (p.Step == 3)
            {
                cancellation.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LlamaTrainer().TrainAsync(options, train, eval, progress, cancellation.Token));

        var other = options with { Lora = new LoraOptions { Rank = 2, Alpha = 8 } };
        await Assert.ThrowsAsync<InvalidOperationException>(() => new LlamaTrainer().TrainAsync(other, train, eval, null, TestContext.Current.CancellationToken));
    }
}
