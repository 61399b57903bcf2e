using System.Runtime.CompilerServices;
using System.Text;
using LLMTune.Engine.Inference;

namespace LLMTune.Inference.Features.Generation;

/// <summary>A generation running in this process on the engine's continuous-batching loop.</summary>
internal sealed class LocalModelCall : ModelCall
{
    private readonly string _model;
    private readonly CancellationTokenSource _lifetime;
    private readonly Engine.Inference.Generation _generation;
    private readonly StringBuilder _streamed = new();
    private int _streamedTokens;

    private LocalModelCall(string model, Engine.Inference.Generation generation, CancellationTokenSource lifetime)
    {
        _model = model;
        _generation = generation;
        _lifetime = lifetime;
    }

    public override string Model => _model;

    /// <summary>Queues the generation; engine errors (busy, context, unknown variant) surface here, before any response.</summary>
    public static LocalModelCall Start(string modelId, LoadedModel model, string? variant, GenerationRequest request, CancellationToken requestAborted)
    {
        // Our own source, linked to the client's: disposing the call cancels the generation whatever path ended the request.
        var lifetime = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        try
        {
            var generation = model.Generate(request with { Variant = variant }, lifetime.Token);
            return new LocalModelCall(modelId, generation, lifetime);
        }
        catch
        {
            lifetime.Dispose();
            throw;
        }
    }

    public override async IAsyncEnumerable<string> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var token in _generation.ReadTokensAsync(cancellationToken).ConfigureAwait(false))
        {
            _streamedTokens = token.Index + 1;
            if (token.Text.Length > 0)
            {
                _streamed.Append(token.Text);
                yield return token.Text;
            }
        }
    }

    public override async Task<InferenceOutcome> CompleteAsync(CancellationToken cancellationToken) =>
        ToOutcome(await _generation.Completion.WaitAsync(cancellationToken).ConfigureAwait(false));

    public override InferenceOutcome Snapshot()
    {
        var completion = _generation.Completion;
        if (completion.IsCompletedSuccessfully)
        {
            return ToOutcome(completion.Result);
        }

        // Faulted (unloaded, decode failure) or still running: what the client has seen so far.
        return new InferenceOutcome(_model, _streamed.ToString(), _generation.PromptTokens, _streamedTokens,
            completion.IsFaulted ? InferenceOutcome.Error : InferenceOutcome.Cancelled);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_generation.Completion.IsCompleted)
        {
            await _lifetime.CancelAsync().ConfigureAwait(false);
            // The engine stops a cancelled sequence within one decode step; wait so the slot is free when we return.
            await ((Task)_generation.Completion).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _lifetime.Dispose();
    }

    private InferenceOutcome ToOutcome(GenerationResult result) => new(
        _model,
        result.Text,
        result.PromptTokens,
        result.CompletionTokens,
        result.FinishReason switch
        {
            FinishReason.Stop => InferenceOutcome.Stop,
            FinishReason.Length => InferenceOutcome.Length,
            _ => InferenceOutcome.Cancelled,
        });
}
