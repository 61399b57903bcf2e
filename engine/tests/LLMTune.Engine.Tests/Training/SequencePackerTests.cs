using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

public sealed class SequencePackerTests
{
    [Fact]
    public void Prompt_tokens_are_never_targets_and_packed_examples_keep_their_own_positions()
    {
        TrainingExample[] examples =
        [
            new([1, 2, 3, 4, 5], promptLength: 3),
            new([6, 7, 8], promptLength: 1),
            new([9, 10, 11, 12], lossMask: [false, true, false, true]),
        ];

        var batch = Assert.Single(SequencePacker.Pack(examples, [0, 1, 2], sequenceLength: 16, rows: 1, pack: true));

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0], batch.Tokens);
        Assert.Equal([0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3], batch.Positions.Take(12));
        // Position i predicts token i+1 of the same example, only where that token is trained.
        Assert.Equal([-1, -1, 4, 5, -1, 7, 8, -1, 10, -1, 12, -1, -1, -1, -1, -1], batch.Targets);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, -1, -1, -1, -1], batch.Segments);
        Assert.Equal(12, batch.TokenCount);
    }

    [Fact]
    public void Without_packing_each_example_gets_its_own_row_and_long_ones_are_truncated()
    {
        TrainingExample[] examples = [new([1, 2, 3, 4, 5, 6], promptLength: 1), new([7, 8], promptLength: 1)];

        var batch = Assert.Single(SequencePacker.Pack(examples, [0, 1], sequenceLength: 4, rows: 2, pack: false));

        Assert.Equal([1, 2, 3, 4, 7, 8, 0, 0], batch.Tokens);
        Assert.Equal([2, 3, 4, -1, 8, -1, -1, -1], batch.Targets);
    }

    [Fact]
    public void The_schedule_warms_up_then_decays_to_its_floor()
    {
        var options = new TrainingOptions { BaseModelPath = "x", OutputPath = "y", LearningRate = 1f, FinalLearningRateFraction = 0.1f };

        Assert.Equal(0.25f, LlamaTrainer.LearningRate(options, warmup: 4, totalSteps: 100, step: 0), 5);
        Assert.Equal(1f, LlamaTrainer.LearningRate(options, 4, 100, 4), 5);
        Assert.Equal(0.1f, LlamaTrainer.LearningRate(options, 4, 100, 99), 5);
        Assert.InRange(LlamaTrainer.LearningRate(options, 4, 100, 52), 0.5f, 0.6f);
    }
}
