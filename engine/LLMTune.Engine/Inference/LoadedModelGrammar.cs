using LLama.Native;

namespace LLMTune.Engine.Inference;

public sealed partial class LoadedModel
{
    /// <summary>The model's own chat template (<c>tokenizer.chat_template</c>), or null when it has none.</summary>
    public string? ChatTemplate => _chatTemplate;

    /// <summary>
    /// Parses the request's grammar once on the caller's thread: the sampler is built on the decode thread, where a
    /// grammar llama.cpp rejects must never arrive.
    /// </summary>
    private void CheckGrammar(GenerationRequest request)
    {
        if (request.Grammar is null)
        {
            return;
        }

        using var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        try
        {
            AddGrammar(chain, request);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ArgumentException($"llama.cpp could not parse the grammar: {e.Message}", nameof(request), e);
        }

        if (chain.Count == 0)
        {
            throw new ArgumentException("llama.cpp could not parse the grammar.", nameof(request));
        }
    }

    /// <summary>First in the chain, so temperature and top-p only ever see tokens the grammar allows.</summary>
    private void AddGrammar(SafeLLamaSamplerChainHandle chain, GenerationRequest request)
    {
        if (request.Grammar is { } grammar)
        {
            chain.AddGrammar(_weights.Vocab, grammar, "root");
        }
    }
}
