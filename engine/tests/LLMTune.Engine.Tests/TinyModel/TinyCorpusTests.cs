using LLMTune.Engine.TinyModel;

namespace LLMTune.Engine.Tests.TinyModel;

public sealed class TinyCorpusTests
{
    private static readonly TinyCorpusOptions Small = new() { Seed = 7, TrainingExamples = 5_000 };

    [Fact]
    public void Same_seed_gives_the_same_corpus_and_another_seed_does_not()
    {
        var first = TinyCorpus.Generate(Small);
        var second = TinyCorpus.Generate(Small);
        Assert.Equal(first.Training, second.Training);
        Assert.Equal(first.HeldOut, second.HeldOut);
        Assert.Equal(first.TrainingTurns, second.TrainingTurns);

        var other = TinyCorpus.Generate(Small with { Seed = 8 });
        Assert.NotEqual(first.Training, other.Training);
    }

    [Fact]
    public void Held_out_prompts_never_occur_in_training()
    {
        // The training draw samples from every training combination; the full split is checked through a large draw.
        var corpus = TinyCorpus.Generate(new TinyCorpusOptions { Seed = 3, TrainingExamples = 400_000, HeldOutPerFamily = 1_000 });
        var trainingPrompts = corpus.Training.Select(e => e.Prompt).ToHashSet(StringComparer.Ordinal);
        var leaked = corpus.HeldOut.Where(e => trainingPrompts.Contains(e.Prompt)).ToList();
        Assert.Empty(leaked);
        Assert.True(corpus.HeldOut.Count > 500);
    }

    [Fact]
    public void Every_family_has_held_out_prompts_and_short_answers()
    {
        var corpus = TinyCorpus.Generate(Small);
        Assert.Equal(12, corpus.Families.Count);
        foreach (var family in corpus.Families)
        {
            var heldOut = corpus.HeldOut.Where(e => e.Family == family).ToList();
            Assert.True(heldOut.Count >= 20, $"{family} has only {heldOut.Count} held-out prompts");
            Assert.Contains(corpus.Training, e => e.Family == family);
        }
        Assert.All(corpus.Training, e => Assert.InRange(e.Answer.Length, 1, 80));
        Assert.Equal(corpus.HeldOut.Count, corpus.HeldOut.Select(e => e.Prompt).Distinct().Count());
    }

    [Fact]
    public void Answers_are_right()
    {
        var corpus = TinyCorpus.Generate(Small);
        Assert.Contains(corpus.Training.Concat(corpus.HeldOut), e => e.Prompt == "What is the capital of France?" && e.Answer == "Paris");
        foreach (var example in corpus.Training.Concat(corpus.HeldOut).Where(e => e.Family == "addition" && e.Prompt.StartsWith("What is ", StringComparison.Ordinal) && e.Prompt.Contains(" plus ")))
        {
            var numbers = example.Prompt["What is ".Length..^1].Split(" plus ").Select(int.Parse).ToArray();
            Assert.Equal((numbers[0] + numbers[1]).ToString(System.Globalization.CultureInfo.InvariantCulture), example.Answer);
        }
        Assert.Contains(corpus.Training.Concat(corpus.HeldOut), e => e.Family == "uppercase" && e.Prompt == "Uppercase: tiger" && e.Answer == "TIGER");
    }
}
