using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LLMTune.Engine.Inference;

/// <summary>
/// A running generation: its token stream (one reader) and its final result. Cancelling the token given when it
/// started stops it within one decode step; <see cref="Completion"/> then reports <see cref="FinishReason.Cancelled"/>.
/// </summary>
public sealed class Generation
{
    private readonly ChannelReader<GeneratedToken> _tokens;

    internal Generation(int promptTokens, ChannelReader<GeneratedToken> tokens, Task<GenerationResult> completion, CancellationToken cancellation)
    {
        PromptTokens = promptTokens;
        _tokens = tokens;
        Completion = completion;
        Cancellation = cancellation;
    }

    public int PromptTokens { get; }

    /// <summary>Completes when the generation ends, with its text, usage and finish reason; faults on unload or decode failure.</summary>
    public Task<GenerationResult> Completion { get; }

    internal CancellationToken Cancellation { get; }

    /// <summary>
    /// The sampled tokens as they are produced. Ends after the token carrying the result, or throws
    /// <see cref="OperationCanceledException"/> when the generation was cancelled, or the failure's exception.
    /// </summary>
    public async IAsyncEnumerable<GeneratedToken> ReadTokensAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _tokens.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_tokens.TryRead(out var token))
            {
                yield return token;
            }
        }

        var result = await Completion.ConfigureAwait(false);
        if (result.FinishReason == FinishReason.Cancelled)
        {
            throw new OperationCanceledException("The generation was cancelled.", Cancellation);
        }
    }
}
