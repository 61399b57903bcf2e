using LLMTune.Engine.Gguf;
using LLMTune.Engine.Inference;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Inference;

public sealed class GenerationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_fixed_seed_reproduces_the_same_sampled_text()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 32, Temperature = 1f, TopP = 0.95f, Seed = 42 };

        var first = await Tokens(host.Model, request);
        var second = await Tokens(host.Model, request);
        var otherSeed = await Tokens(host.Model, request with { Seed = 43 });

        Assert.Equal(32, first.Count);
        Assert.Equal(first.Select(t => (t.TokenId, t.Text)), second.Select(t => (t.TokenId, t.Text)));
        Assert.Equal(first[^1].Result!.Text, second[^1].Result!.Text);
        Assert.NotEqual(first.Select(t => t.TokenId), otherSeed.Select(t => t.TokenId));
    }

    [Fact]
    public async Task MaxTokens_ends_the_generation_with_finish_reason_length()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);

        var result = await host.Model.CompleteAsync(new GenerationRequest { Prompt = "count: one two", MaxTokens = 5, Temperature = 0 }, Ct);

        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(5, result.CompletionTokens);
        Assert.Equal(host.Model.Tokenize("count: one two").Length, result.PromptTokens);
    }

    [Fact]
    public async Task An_end_of_generation_token_ends_with_finish_reason_stop_and_adds_no_text()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var endTokens = new[] { GgufTokenizer.ImEnd, GgufTokenizer.EndOfText }.Select(TestModels.SmallBuilder.Tokenizer.IdOf).ToArray();

        // Greedy continuation of this prompt reaches <|im_end|> after a few dozen tokens with the seed-7 test model.
        var tokens = await Tokens(host.Model, new GenerationRequest { Prompt = "The quick brown fox", MaxTokens = 200, Temperature = 0 });

        var last = tokens[^1];
        Assert.Equal(FinishReason.Stop, last.Result!.FinishReason);
        Assert.Contains(last.TokenId, endTokens);
        Assert.True(tokens.Count < 200);
        Assert.Equal(tokens.Count, last.Result.CompletionTokens);
        Assert.Equal(string.Concat(tokens.Select(t => t.Text)), last.Result.Text);
        Assert.DoesNotContain("<|im_end|>", last.Result.Text);
    }

    [Fact]
    public async Task IgnoreEndOfGeneration_runs_to_maxTokens_where_the_model_would_stop()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "The quick brown fox", MaxTokens = 120, Temperature = 0 };

        var stopped = await host.Model.CompleteAsync(request, Ct);
        var forced = await host.Model.CompleteAsync(request with { IgnoreEndOfGeneration = true }, Ct);

        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(FinishReason.Length, forced.FinishReason);
        Assert.Equal(120, forced.CompletionTokens);
        Assert.StartsWith(stopped.Text, forced.Text);
    }

    [Fact]
    public async Task A_stop_sequence_ends_the_generation_and_is_not_in_the_text()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        var request = new GenerationRequest { Prompt = "The weather today", MaxTokens = 40, Temperature = 0 };
        var free = await Tokens(host.Model, request);
        var fullText = string.Concat(free.Select(t => t.Text));
        // A stop string that straddles the boundary between the 6th and 7th tokens' text.
        var boundary = string.Concat(free.Take(6).Select(t => t.Text)).Length;
        Assert.InRange(boundary, 2, fullText.Length - 2);
        var stop = fullText.Substring(boundary - 1, 2);

        var streamed = await Tokens(host.Model, request with { Stop = [stop] });
        var result = streamed[^1].Result!;

        var expected = fullText[..fullText.IndexOf(stop, StringComparison.Ordinal)];
        Assert.Equal(FinishReason.Stop, result.FinishReason);
        Assert.Equal(expected, result.Text);
        Assert.Equal(expected, string.Concat(streamed.Select(t => t.Text)));
        Assert.DoesNotContain(stop, result.Text);
        Assert.True(result.CompletionTokens < free.Count);
    }

    [Fact]
    public async Task Cancellation_stops_within_one_decode_step_and_frees_the_slot_and_kv_cells()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 1);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var generation = host.Model.Generate(new GenerationRequest { Prompt = "a long story", MaxTokens = 200, Temperature = 0 }, cancellation.Token);
        var read = 0;
        long tokensAtCancel = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in generation.ReadTokensAsync(Ct))
            {
                if (++read == 3)
                {
                    Assert.Equal(1, host.Model.GetStats().ActiveSequences);
                    // Stats are published after each step, while its tokens reach the reader during it: the step being read
                    // may not be counted yet, one more may complete before Cancel lands, and one may be in flight.
                    tokensAtCancel = host.Model.GetStats().TokensGenerated;
                    await cancellation.CancelAsync();
                }
            }
        });

        var result = await generation.Completion;

        Assert.Equal(FinishReason.Cancelled, result.FinishReason);
        Assert.InRange(result.CompletionTokens, 3, tokensAtCancel + 3);
        var stats = host.Model.GetStats();
        Assert.Equal(0, stats.ActiveSequences);
        Assert.Equal(0, stats.KvCellsInUse);
        // The only slot is free again: the next request runs.
        var next = await host.Model.CompleteAsync(new GenerationRequest { Prompt = "next", MaxTokens = 2, Temperature = 0 }, Ct);
        Assert.Equal(2, next.CompletionTokens);
    }

    [Fact]
    public async Task A_request_cancelled_while_queued_never_takes_a_slot()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 1);
        using var running = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var first = host.Model.Generate(new GenerationRequest { Prompt = "first", MaxTokens = 200, Temperature = 0 }, running.Token);
        using var queuedCancellation = new CancellationTokenSource();
        var queued = host.Model.Generate(new GenerationRequest { Prompt = "second", MaxTokens = 5, Temperature = 0 }, queuedCancellation.Token);

        await queuedCancellation.CancelAsync();
        var queuedResult = await queued.Completion;
        await running.CancelAsync();
        await first.Completion;

        Assert.Equal(FinishReason.Cancelled, queuedResult.FinishReason);
        Assert.Equal(0, queuedResult.CompletionTokens);
        Assert.Equal(0, host.Model.GetStats().QueuedRequests);
    }

    [Fact]
    public async Task A_full_wait_queue_rejects_requests_with_EngineBusyException()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.NeverEndingPath, maxSequences: 1, queueCapacity: 1);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var request = new GenerationRequest { Prompt = "busy", MaxTokens = 200, Temperature = 0 };
        var running = host.Model.Generate(request, cancellation.Token);
        var waiting = host.Model.Generate(request, cancellation.Token);

        var busy = Assert.Throws<EngineBusyException>(() => host.Model.Generate(request, cancellation.Token));

        Assert.Equal(1, busy.QueueCapacity);
        await cancellation.CancelAsync();
        Assert.Equal(FinishReason.Cancelled, (await running.Completion).FinishReason);
        Assert.Equal(FinishReason.Cancelled, (await waiting.Completion).FinishReason);
    }

    [Fact]
    public async Task Prompts_beyond_the_context_fail_with_the_numbers()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath, contextLength: 32);
        var longPrompt = string.Join(" ", Enumerable.Repeat("x", 40));

        var tooLong = Assert.Throws<ContextLengthExceededException>(() => host.Model.Generate(new GenerationRequest { Prompt = longPrompt }));
        Assert.Equal(host.Model.Tokenize(longPrompt).Length, tooLong.PromptTokens);
        Assert.Equal(32, tooLong.ContextLength);

        var tooMuch = Assert.Throws<ContextLengthExceededException>(() => host.Model.Generate(new GenerationRequest { Prompt = "short", MaxTokens = 31 }));
        Assert.Equal(31, tooMuch.MaxTokens);
        Assert.Contains("maxTokens 31", tooMuch.Message);

        // The largest int: prompt + maxTokens must not wrap around and get admitted (it then ran out of KV cells).
        var largest = Assert.Throws<ContextLengthExceededException>(() => host.Model.Generate(new GenerationRequest { Prompt = "short", MaxTokens = int.MaxValue }));
        Assert.Equal(int.MaxValue, largest.MaxTokens);

        // Without maxTokens the completion may use the rest of the context.
        var rest = await host.Model.CompleteAsync(new GenerationRequest { Prompt = "short", Temperature = 0, Stop = ["\u0000never"] }, Ct);
        Assert.True(rest.FinishReason == FinishReason.Stop || rest.PromptTokens + rest.CompletionTokens == 32);
    }

    [Fact]
    public async Task Invalid_requests_are_rejected_before_queueing()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);

        Assert.Throws<ArgumentException>(() => host.Model.Generate(new GenerationRequest()));
        Assert.Throws<ArgumentOutOfRangeException>(() => host.Model.Generate(new GenerationRequest { Prompt = "x", MaxTokens = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => host.Model.Generate(new GenerationRequest { Prompt = "x", TopP = 0 }));
        Assert.Throws<ModelNotFoundException>(() => host.Model.Generate(new GenerationRequest { Prompt = "x", Variant = "nope" }));
        Assert.Equal(0, host.Model.GetStats().QueuedRequests);
    }

    [Fact]
    public async Task Chat_messages_use_ChatML_when_the_model_has_no_template()
    {
        await using var host = await LoadedTestModel.LoadAsync(TestModels.SmallPath);
        ChatMessage[] messages = [ChatMessage.System("Be brief."), ChatMessage.User("Hi there")];

        var prompt = host.Model.FormatChat(messages);
        var result = await host.Model.CompleteAsync(new GenerationRequest { Messages = messages, MaxTokens = 4, Temperature = 0 }, Ct);

        Assert.False(host.Model.Summary.HasChatTemplate);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", prompt);
        var tokens = host.Model.Tokenize(prompt);
        Assert.Equal(tokens.Length, result.PromptTokens);
        Assert.Equal(TestModels.SmallBuilder.Tokenizer.IdOf(GgufTokenizer.ImStart), tokens[0]);
    }

    [Fact]
    public async Task Chat_messages_use_the_template_from_the_model_metadata()
    {
        const string gemmaTemplate = "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n{{ message['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n";
        var (path, _) = TestModels.Get("gemma-template", TestModels.Small with { ChatTemplate = gemmaTemplate, Name = "test-gemma-template" });
        await using var host = await LoadedTestModel.LoadAsync(path);

        var prompt = host.Model.FormatChat([ChatMessage.User("Hello")]);

        Assert.True(host.Model.Summary.HasChatTemplate);
        Assert.Equal("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", prompt);
    }

    [Fact]
    public async Task A_template_llama_cpp_does_not_recognise_falls_back_to_ChatML()
    {
        var (path, _) = TestModels.Get("odd-template", TestModels.Small with { ChatTemplate = "{{ messages | custom_filter }}", Name = "test-odd-template" });
        await using var host = await LoadedTestModel.LoadAsync(path);

        Assert.Throws<UnsupportedChatTemplateException>(() => ChatPromptFormatter.Format("{{ messages | custom_filter }}", [ChatMessage.User("Hi")]));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", host.Model.FormatChat([ChatMessage.User("Hi")]));
    }

    internal static async Task<List<GeneratedToken>> Tokens(LoadedModel model, GenerationRequest request)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var token in model.GenerateAsync(request, Ct))
        {
            tokens.Add(token);
        }

        return tokens;
    }
}
