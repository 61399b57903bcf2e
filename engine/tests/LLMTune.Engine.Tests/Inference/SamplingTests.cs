using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

/// <summary>Choices, log probabilities, penalties, logit biases and embeddings on the small random model.</summary>
public sealed class SamplingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Greedy_choices_copied_from_one_prompt_evaluation_equal_a_single_generation()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 4);
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 12, Temperature = 0 };
        var single = await host.Model.CompleteAsync(request, Ct);

        var choices = await Task.WhenAll(host.Model.GenerateChoices(request with { Choices = 3 }, Ct).Select(g => g.Completion));

        Assert.Equal(3, choices.Length);
        Assert.All(choices, c => Assert.Equal(single.Text, c.Text));
        Assert.All(choices, c => Assert.Equal(single.PromptTokens, c.PromptTokens));
        Assert.Equal(0, host.Model.GetStats().KvCellsInUse);
        Assert.Equal(0, host.Model.GetStats().ActiveSequences);
    }

    [Fact]
    public async Task Sampled_choices_differ_from_each_other_and_repeat_with_the_same_seed()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 4);
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 16, Temperature = 1, Seed = 5, Choices = 3 };

        var first = await Texts(host.Model, request);
        var second = await Texts(host.Model, request);

        Assert.Equal(first, second);
        Assert.Equal(3, first.Distinct().Count());
    }

    [Fact]
    public async Task More_choices_than_choice_sequences_are_refused_before_anything_is_queued()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 4, choiceSequences: 1);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            host.Model.GenerateChoices(new GenerationRequest { Prompt = "x", MaxTokens = 2, Choices = 3 }, Ct));

        Assert.Equal(nameof(GenerationRequest.Choices), error.ParamName);
        Assert.Equal(0, host.Model.GetStats().QueuedRequests);
    }

    [Fact]
    public async Task Eight_choices_run_on_a_model_with_four_request_slots_beside_other_requests()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 4);
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 200, Temperature = 1, Seed = 9, Choices = GenerationRequest.MaxChoices };

        var eight = host.Model.GenerateChoices(request, Ct);
        // Other requests fill the remaining request slots while the eight choices run: none waits for them.
        var others = await Task.WhenAll(Enumerable.Range(0, 3)
            .Select(i => host.Model.CompleteAsync(new GenerationRequest { Prompt = $"Another prompt {i}", MaxTokens = 4, Temperature = 0 }, Ct)));

        Assert.All(others, r => Assert.Equal(4, r.CompletionTokens));
        Assert.DoesNotContain(eight, g => g.Completion.IsCompleted);
        var choices = await Task.WhenAll(eight.Select(g => g.Completion));
        Assert.Equal(GenerationRequest.MaxChoices, choices.Length);
        Assert.All(choices, c => Assert.Equal(200, c.CompletionTokens));
        Assert.True(choices.Select(c => c.Text).Distinct().Count() > 1, "sampled choices should differ");
        Assert.All(choices, c => Assert.Equal(choices[0].PromptTokens, c.PromptTokens));
        var final = host.Model.GetStats();
        Assert.Equal(0, final.ActiveSequences);
        Assert.Equal(0, final.KvCellsInUse);
    }

    [Fact]
    public async Task A_request_waiting_for_choice_sequences_lets_single_choice_requests_start()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 3, choiceSequences: 2);
        using var first = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var running = host.Model.GenerateChoices(new GenerationRequest { Prompt = "a", MaxTokens = 200, Temperature = 0, Choices = 3 }, first.Token);
        await running[0].ReadTokensAsync(Ct).FirstAsync(Ct);

        // Both choice sequences are taken: this one waits, the single-choice request behind it does not.
        var waiting = host.Model.GenerateChoices(new GenerationRequest { Prompt = "b", MaxTokens = 2, Temperature = 0, Choices = 2 }, Ct);
        var single = host.Model.Generate(new GenerationRequest { Prompt = "c", MaxTokens = 2, Temperature = 0 }, Ct);

        Assert.Equal(2, (await single.Completion).CompletionTokens);
        Assert.False(waiting[0].Completion.IsCompleted);
        await first.CancelAsync();
        Assert.All(await Task.WhenAll(waiting.Select(g => g.Completion)), r => Assert.Equal(2, r.CompletionTokens));
    }

    [Fact]
    public async Task Logprobs_have_one_entry_per_token_with_the_most_likely_alternatives_first()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "The weather today", MaxTokens = 10, Temperature = 0, TopLogprobs = 5 };

        var tokens = new List<GeneratedToken>();
        await foreach (var token in host.Model.GenerateAsync(request, Ct))
        {
            tokens.Add(token);
        }

        var result = tokens[^1].Result!;
        Assert.Equal(result.CompletionTokens, result.Logprobs!.Count);
        Assert.All(tokens, t => Assert.NotNull(t.Logprob));
        Assert.Equal(tokens.Select(t => t.Logprob), result.Logprobs);
        foreach (var logprob in result.Logprobs)
        {
            Assert.Equal(5, logprob.Top.Count);
            Assert.True(logprob.Logprob <= 0);
            Assert.Equal(logprob.Top.OrderByDescending(t => t.Logprob).Select(t => t.Logprob), logprob.Top.Select(t => t.Logprob));
            // Greedy decoding takes the most likely token.
            Assert.Equal(logprob.Top[0].Logprob, logprob.Logprob, 5);
            Assert.Equal(logprob.Top[0].Bytes, logprob.Bytes);
            Assert.InRange(logprob.Top.Sum(t => Math.Exp(t.Logprob)), 0, 1.0001);
        }

        Assert.Equal(result.Text, string.Concat(result.Logprobs.Select(l => l.Token)));
        var plain = await host.Model.CompleteAsync(request with { TopLogprobs = null }, Ct);
        Assert.Null(plain.Logprobs);
        Assert.Equal(result.Text, plain.Text);
    }

    [Fact]
    public async Task A_logit_bias_of_minus_100_bans_a_token_and_plus_100_forces_it()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "The quick brown fox", MaxTokens = 16, Temperature = 0 };
        var free = await TokenIds(host.Model, request);
        var banned = free.GroupBy(t => t).OrderByDescending(g => g.Count()).First().Key;

        var withBan = await TokenIds(host.Model, request with { LogitBias = new Dictionary<int, float> { [banned] = -100 } });
        var sampledWithBan = await TokenIds(host.Model, request with { Temperature = 1, Seed = 3, LogitBias = new Dictionary<int, float> { [banned] = -100 } });
        var forced = await TokenIds(host.Model, request with { Temperature = 1, Seed = 3, LogitBias = new Dictionary<int, float> { [banned] = 100 } });

        Assert.Contains(banned, free);
        Assert.DoesNotContain(banned, withBan);
        Assert.DoesNotContain(banned, sampledWithBan);
        Assert.All(forced, t => Assert.Equal(banned, t));
    }

    [Fact]
    public async Task Logit_bias_token_ids_outside_the_vocabulary_are_refused()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => host.Model.Generate(
            new GenerationRequest { Prompt = "x", MaxTokens = 2, LogitBias = new Dictionary<int, float> { [host.Model.Summary.VocabularySize] = 1 } }, Ct));

        Assert.Equal(nameof(GenerationRequest.LogitBias), error.ParamName);
    }

    [Fact]
    public async Task Frequency_and_presence_penalties_make_greedy_text_repeat_less()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "The quick brown fox", MaxTokens = 40, Temperature = 0, IgnoreEndOfGeneration = true };

        var free = await TokenIds(host.Model, request);
        var frequency = await TokenIds(host.Model, request with { FrequencyPenalty = 2 });
        var presence = await TokenIds(host.Model, request with { PresencePenalty = 2 });

        Assert.True(free.Distinct().Count() < frequency.Distinct().Count(), $"distinct tokens: {free.Distinct().Count()} free, {frequency.Distinct().Count()} penalised");
        Assert.True(free.Distinct().Count() < presence.Distinct().Count(), $"distinct tokens: {free.Distinct().Count()} free, {presence.Distinct().Count()} penalised");
    }

    [Fact]
    public async Task Embeddings_are_normalised_equal_for_the_same_text_and_differ_for_different_texts()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var inputs = new[] { "the cat sat on the mat", "the cat sat on the mat", "stock markets fell sharply" }.Select(host.Model.TokenizeForEmbedding).ToArray();

        var vectors = await host.Model.EmbedAsync(inputs, Ct);
        var again = await host.Model.EmbedAsync([inputs[2]], Ct);

        Assert.Equal(3, vectors.Length);
        Assert.All(vectors, v => Assert.Equal(host.Model.Summary.EmbeddingLength, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 4));
        Assert.Equal(vectors[0], vectors[1]);
        Assert.Equal(vectors[2], again[0]);
        Assert.NotEqual(vectors[0], vectors[2]);
    }

    private static async Task<string[]> Texts(LoadedModel model, GenerationRequest request) =>
        (await Task.WhenAll(model.GenerateChoices(request, Ct).Select(g => g.Completion))).Select(r => r.Text).ToArray();

    private static async Task<List<int>> TokenIds(LoadedModel model, GenerationRequest request)
    {
        var ids = new List<int>();
        await foreach (var token in model.GenerateAsync(request, Ct))
        {
            ids.Add(token.TokenId);
        }

        return ids;
    }
}
