namespace LLMTune.Engine.Training;

/// <summary>The dimensions of a llama-architecture model that the training graph needs.</summary>
internal sealed record LlamaShape(
    int VocabSize,
    int EmbeddingLength,
    int BlockCount,
    int HeadCount,
    int HeadCountKv,
    int FeedForwardLength,
    int ContextLength,
    float RmsNormEps,
    float RopeFreqBase,
    int RopeDimensions = 0,
    float RopeFreqScale = 1f)
{
    /// <summary>Dimensions of each head that RoPE rotates (llama.cpp's n_rot; the whole head unless the model says otherwise).</summary>
    public int RopeDims => RopeDimensions > 0 ? RopeDimensions : HeadDim;

    public int HeadDim => EmbeddingLength / HeadCount;

    /// <summary>Width of the K and V projections (smaller than the embedding with grouped-query attention).</summary>
    public int KvWidth => HeadDim * HeadCountKv;

    public void Validate()
    {
        if (EmbeddingLength % HeadCount != 0)
        {
            throw new NotSupportedException($"Embedding length {EmbeddingLength} is not a multiple of the head count {HeadCount}.");
        }

        if (HeadCount % HeadCountKv != 0)
        {
            throw new NotSupportedException($"Head count {HeadCount} is not a multiple of the KV head count {HeadCountKv}.");
        }

        if (HeadDim % 2 != 0)
        {
            throw new NotSupportedException($"Head dimension {HeadDim} must be even for RoPE.");
        }
    }
}
