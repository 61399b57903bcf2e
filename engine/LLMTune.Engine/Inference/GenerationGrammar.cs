namespace LLMTune.Engine.Inference;

public sealed partial record GenerationRequest
{
    /// <summary>
    /// A GBNF grammar (llama.cpp's format, start rule <c>root</c>) the text must follow: only tokens that keep it
    /// matching are sampled, and once the grammar is complete only end-of-generation is, so the generation stops there.
    /// </summary>
    public string? Grammar { get; init; }

    private void ValidateGrammar()
    {
        if (Grammar is not null && IgnoreEndOfGeneration)
        {
            // A complete grammar allows only end-of-generation; banning it would leave nothing to sample.
            throw new ArgumentException("A grammar cannot be combined with IgnoreEndOfGeneration.", nameof(Grammar));
        }
    }
}
