using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

public sealed class GrammarTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_grammar_constrains_the_sampled_text_and_ends_the_generation_when_complete()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        const string grammar = """
            root ::= "{\"ok\":" ("true" | "false") ",\"n\":" [0-9]{1,3} "}"
            """;

        for (uint seed = 1; seed <= 5; seed++)
        {
            var result = await host.Model.CompleteAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 40, Temperature = 1f, Seed = seed, Grammar = grammar }, Ct);

            Assert.Matches("""^\{"ok":(true|false),"n":[0-9]{1,3}\}$""", result.Text);
            Assert.Equal(FinishReason.Stop, result.FinishReason);
        }
    }

    [Fact]
    public async Task Every_choice_follows_the_grammar_with_its_own_grammar_state()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 4);
        const string grammar = """
            root ::= "[" [a-z]{1,6} "]"
            """;
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 40, Temperature = 1f, Seed = 3, Grammar = grammar, Choices = 4, PresencePenalty = 1f, TopLogprobs = 1 };

        var choices = await Task.WhenAll(host.Model.GenerateChoices(request, Ct).Select(g => g.Completion));

        // One grammar sampler shared by the choices would see every choice's tokens and reject the second "[".
        Assert.Equal(4, choices.Length);
        Assert.All(choices, c => Assert.Matches("^\\[[a-z]{1,6}\\]$", c.Text));
        Assert.All(choices, c => Assert.Equal(FinishReason.Stop, c.FinishReason));
        Assert.All(choices, c => Assert.Equal(c.CompletionTokens, c.Logprobs!.Count));
        Assert.True(choices.Select(c => c.Text).Distinct().Count() > 1, string.Join(", ", choices.Select(c => c.Text)));
        Assert.Equal(0, host.Model.GetStats().ActiveSequences);
    }

    [Theory]
    [InlineData("root ::= missing-rule")]
    [InlineData("root ::= root \"a\" | \"b\"")]
    [InlineData("root ::= [a-")]
    public async Task A_grammar_llama_cpp_cannot_parse_is_refused_before_anything_runs(string grammar)
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);

        var error = Assert.Throws<ArgumentException>(() => host.Model.Generate(new GenerationRequest { Prompt = "x", MaxTokens = 4, Grammar = grammar }, Ct));

        Assert.Contains("grammar", error.Message);
        var after = await host.Model.CompleteAsync(new GenerationRequest { Prompt = "x", MaxTokens = 2, Temperature = 0 }, Ct);
        Assert.Equal(2, after.CompletionTokens);
    }
}
