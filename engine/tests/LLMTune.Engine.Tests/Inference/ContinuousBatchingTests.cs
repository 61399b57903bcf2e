using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

public sealed class ContinuousBatchingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Prompts =
    [
        "The quick brown fox", "In a galaxy far away", "Recipe for bread:", "def fibonacci(n):",
        "Dear Sir or Madam,", "1, 2, 3, 4,", "Breaking news today", "<|im_start|>user\nhi<|im_end|>\n",
    ];

    [Fact]
    public async Task Eight_concurrent_greedy_generations_equal_the_same_prompts_run_one_at_a_time()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 8);
        GenerationRequest Request(string prompt) => new() { Prompt = prompt, MaxTokens = 24, Temperature = 0 };

        var alone = new List<int[]>();
        foreach (var prompt in Prompts)
        {
            alone.Add((await GenerationTests.Tokens(host.Model, Request(prompt))).Select(t => t.TokenId).ToArray());
        }

        var stepsBefore = host.Model.GetStats().DecodeSteps;
        var together = await Task.WhenAll(Prompts.Select(async p => (await GenerationTests.Tokens(host.Model, Request(p))).Select(t => t.TokenId).ToArray()));
        var steps = host.Model.GetStats().DecodeSteps - stepsBefore;

        // The outputs differ from one another, so a mix-up between sequences could not go unnoticed.
        Assert.Equal(Prompts.Length, alone.Select(a => string.Join(",", a)).Distinct().Count());
        // Batched decoding computes each sequence's rows with the same kernels as a lone decode on this CPU build,
        // so greedy outputs are identical token for token (no batch-numerics difference was observed).
        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(alone[i], together[i]);
        }

        // They really shared decode steps: 8 × 24 tokens alone would need at least 8 × 24 steps.
        Assert.InRange(steps, 24, 8 * 24 / 2);
    }

    [Fact]
    public async Task A_request_that_arrives_mid_generation_streams_tokens_before_the_others_finish()
    {
        // The decode loop runs ahead of readers, so the earlier requests must not end early at an end token.
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 4);
        var running = Enumerable.Range(0, 3)
            .Select(i => host.Model.Generate(new GenerationRequest { Prompt = Prompts[i], MaxTokens = 200, Temperature = 0 }, Ct))
            .ToArray();
        var readers = running.Select(g => g.ReadTokensAsync(Ct).GetAsyncEnumerator(Ct)).ToArray();
        foreach (var reader in readers)
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.True(await reader.MoveNextAsync());
            }
        }

        var late = host.Model.Generate(new GenerationRequest { Prompt = Prompts[3], MaxTokens = 3, Temperature = 0 }, Ct);
        var lateTokens = 0;
        await foreach (var token in late.ReadTokensAsync(Ct))
        {
            lateTokens++;
            Assert.All(running, g => Assert.False(g.Completion.IsCompleted, "an earlier generation finished before the late request produced its tokens"));
        }

        var lateResult = await late.Completion;
        Assert.Equal(3, lateTokens);
        Assert.Equal(FinishReason.Length, lateResult.FinishReason);
        Assert.All(running, g => Assert.False(g.Completion.IsCompleted));
        foreach (var reader in readers)
        {
            await reader.DisposeAsync();
        }

        var results = await Task.WhenAll(running.Select(g => g.Completion));
        Assert.All(results, r => Assert.Equal(200, r.CompletionTokens));
    }

    [Fact]
    public async Task Slots_are_bounded_and_waiting_requests_start_as_slots_free_up()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, maxSequences: 2, queueCapacity: 8);
        var generations = Enumerable.Range(0, 6)
            .Select(i => host.Model.Generate(new GenerationRequest { Prompt = Prompts[i], MaxTokens = 10, Temperature = 0 }, Ct))
            .ToArray();

        var peakActive = 0;
        while (!generations.All(g => g.Completion.IsCompleted))
        {
            var stats = host.Model.GetStats();
            peakActive = Math.Max(peakActive, stats.ActiveSequences);
            Assert.InRange(stats.ActiveSequences, 0, 2);
            await Task.WhenAny(generations.Select(g => g.Completion).Append(Task.Delay(1, Ct)));
        }

        var results = await Task.WhenAll(generations.Select(g => g.Completion));
        Assert.All(results, r => Assert.Equal(10, r.CompletionTokens));
        var final = host.Model.GetStats();
        Assert.Equal(0, final.ActiveSequences);
        Assert.Equal(0, final.QueuedRequests);
        Assert.Equal(0, final.KvCellsInUse);
    }
}
