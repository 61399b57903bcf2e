using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using LLMTune.Engine.Inference;

namespace LLMTune.Inference.Features.Generation;

/// <summary>A generation running in this process on the engine's continuous-batching loop, one engine sequence per choice.</summary>
internal sealed class LocalModelCall : ModelCall
{
    private readonly string _model;
    private readonly CancellationTokenSource _lifetime;
    private readonly IReadOnlyList<Engine.Inference.Generation> _choices;
    private readonly StringBuilder[] _streamed;
    private readonly int[] _streamedTokens;

    private LocalModelCall(string model, IReadOnlyList<Engine.Inference.Generation> choices, CancellationTokenSource lifetime)
    {
        _model = model;
        _choices = choices;
        _lifetime = lifetime;
        _streamed = choices.Select(_ => new StringBuilder()).ToArray();
        _streamedTokens = new int[choices.Count];
    }

    public override string Model => _model;

    /// <summary>Queues the generation; engine errors (busy, context, unknown variant) surface here, before any response.</summary>
    public static LocalModelCall Start(string modelId, LoadedModel model, string? variant, GenerationRequest request, CancellationToken requestAborted)
    {
        // Our own source, linked to the client's: disposing the call cancels the generation whatever path ended the request.
        var lifetime = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        try
        {
            var choices = model.GenerateChoices(request with { Variant = variant }, lifetime.Token);
            return new LocalModelCall(modelId, choices, lifetime);
        }
        catch
        {
            lifetime.Dispose();
            throw;
        }
    }

    public override async IAsyncEnumerable<string> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var delta in StreamDeltasAsync(cancellationToken).ConfigureAwait(false))
        {
            if (delta.Text.Length > 0)
            {
                yield return delta.Text;
            }
        }
    }

    /// <summary>
    /// The choices' tokens interleaved as they are produced. A token whose text is held back (part of a character, a
    /// possible stop sequence) is still a delta when it carries a log probability, so every token's entry is sent.
    /// </summary>
    public override async IAsyncEnumerable<ModelDelta> StreamDeltasAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_choices.Count == 1)
        {
            await foreach (var token in _choices[0].ReadTokensAsync(cancellationToken).ConfigureAwait(false))
            {
                if (Record(0, token) is { } delta)
                {
                    yield return delta;
                }
            }

            yield break;
        }

        var merged = Channel.CreateUnbounded<ModelDelta>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = _choices.Select((generation, choice) => PumpAsync(generation, choice, merged.Writer, cancellationToken)).ToArray();
        _ = Task.WhenAll(pumps).ContinueWith(all => merged.Writer.TryComplete(all.Exception?.InnerException), TaskScheduler.Default);
        await foreach (var delta in merged.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return delta;
        }
    }

    private async Task PumpAsync(Engine.Inference.Generation generation, int choice, ChannelWriter<ModelDelta> merged, CancellationToken cancellationToken)
    {
        await foreach (var token in generation.ReadTokensAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Record(choice, token) is { } delta)
            {
                merged.TryWrite(delta);
            }
        }
    }

    private ModelDelta? Record(int choice, GeneratedToken token)
    {
        _streamedTokens[choice] = token.Index + 1;
        _streamed[choice].Append(token.Text);
        return token.Text.Length > 0 || token.Logprob is not null ? new ModelDelta(choice, token.Text, token.Logprob) : null;
    }

    public override async Task<InferenceOutcome> CompleteAsync(CancellationToken cancellationToken) =>
        ToOutcome(await Task.WhenAll(_choices.Select(c => c.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false));

    public override InferenceOutcome Snapshot()
    {
        if (_choices.All(c => c.Completion.IsCompletedSuccessfully))
        {
            return ToOutcome(_choices.Select(c => c.Completion.Result).ToArray());
        }

        // Faulted (unloaded, decode failure) or still running: what the client has seen so far.
        var finish = _choices.Any(c => c.Completion.IsFaulted) ? InferenceOutcome.Error : InferenceOutcome.Cancelled;
        return new InferenceOutcome(_model, _streamed[0].ToString(), _choices[0].PromptTokens, _streamedTokens.Sum(), finish);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_choices.All(c => c.Completion.IsCompleted))
        {
            await _lifetime.CancelAsync().ConfigureAwait(false);
            // The engine stops a cancelled sequence within one decode step; wait so the slots are free when we return.
            await ((Task)Task.WhenAll(_choices.Select(c => c.Completion))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _lifetime.Dispose();
    }

    private InferenceOutcome ToOutcome(GenerationResult[] results)
    {
        var choices = results.Select((result, index) => new ChoiceOutcome(index, result.Text, Finish(result.FinishReason), result.Logprobs)).ToArray();
        return new InferenceOutcome(_model, results[0].Text, results[0].PromptTokens, results.Sum(r => r.CompletionTokens), choices[0].FinishReason)
        {
            Choices = choices,
        };
    }

    private static string Finish(FinishReason reason) => reason switch
    {
        FinishReason.Stop => InferenceOutcome.Stop,
        FinishReason.Length => InferenceOutcome.Length,
        _ => InferenceOutcome.Cancelled,
    };
}
