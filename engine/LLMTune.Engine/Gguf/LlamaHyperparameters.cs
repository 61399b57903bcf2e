namespace LLMTune.Engine.Gguf;

/// <summary>
/// Shape of a llama-family model as stored under <c>{architecture}.*</c> GGUF keys.
/// <see cref="HeadCountKv"/> below <see cref="HeadCount"/> means grouped-query attention.
/// </summary>
public sealed record LlamaHyperparameters(
    int VocabSize,
    int ContextLength,
    int EmbeddingLength,
    int BlockCount,
    int HeadCount,
    int HeadCountKv,
    int FeedForwardLength,
    float RopeFreqBase = 10000f,
    float RmsNormEpsilon = 1e-5f)
{
    public int HeadDimension => EmbeddingLength / HeadCount;

    /// <summary>Width of the K and V projections: KV heads × head dimension.</summary>
    public int KvDimension => HeadCountKv * HeadDimension;

    /// <summary>Parameters of the weights <see cref="LlamaGgufBuilder"/> writes (untied output head unless told).</summary>
    public long ParameterCount(bool tiedOutput = false)
    {
        long e = EmbeddingLength, f = FeedForwardLength, v = VocabSize, kv = KvDimension;
        var perLayer = e /* attn_norm */ + e * e * 2 /* q, o */ + e * kv * 2 /* k, v */ + e /* ffn_norm */ + e * f * 3;
        return v * e + BlockCount * perLayer + e + (tiedOutput ? 0 : v * e);
    }

    /// <summary>Throws when the shape cannot make a llama model.</summary>
    public void Validate()
    {
        if (VocabSize <= 0 || ContextLength <= 0 || EmbeddingLength <= 0 || BlockCount <= 0 || HeadCount <= 0 || HeadCountKv <= 0 || FeedForwardLength <= 0)
        {
            throw new ArgumentException($"Every llama dimension must be positive: {this}.");
        }

        if (EmbeddingLength % HeadCount != 0)
        {
            throw new ArgumentException($"Embedding length {EmbeddingLength} is not divisible by {HeadCount} heads.");
        }

        if (HeadCount % HeadCountKv != 0)
        {
            throw new ArgumentException($"{HeadCount} heads cannot be grouped over {HeadCountKv} KV heads.");
        }

        if (HeadDimension % 2 != 0)
        {
            throw new ArgumentException($"Head dimension {HeadDimension} must be even for RoPE.");
        }
    }

    /// <summary>
    /// Reads the shape from GGUF metadata of any llama-like architecture (<c>general.architecture</c> names the key prefix).
    /// The vocabulary size falls back to the tokenizer's token list, then to <c>token_embd.weight</c>.
    /// </summary>
    public static LlamaHyperparameters FromGguf(GgufFile file)
    {
        var meta = file.Metadata;
        var arch = file.Architecture ?? throw new GgufFormatException("GGUF file has no general.architecture.");
        var headCount = meta.GetInt32($"{arch}.attention.head_count");
        var vocab = meta.GetInt64OrNull($"{arch}.vocab_size")
            ?? (meta.TryGetValue("tokenizer.ggml.tokens", out var tokens) && tokens.Value is GgufArray list ? list.Count : (long?)null)
            ?? file.FindTensor("token_embd.weight")?.Shape[1]
            ?? throw new GgufFormatException("GGUF file does not say its vocabulary size.");
        return new LlamaHyperparameters(
            VocabSize: checked((int)vocab),
            ContextLength: meta.GetInt32($"{arch}.context_length"),
            EmbeddingLength: meta.GetInt32($"{arch}.embedding_length"),
            BlockCount: meta.GetInt32($"{arch}.block_count"),
            HeadCount: headCount,
            HeadCountKv: (int?)meta.GetInt64OrNull($"{arch}.attention.head_count_kv") ?? headCount,
            FeedForwardLength: meta.GetInt32($"{arch}.feed_forward_length"),
            RopeFreqBase: meta.GetFloat32OrNull($"{arch}.rope.freq_base") ?? 10000f,
            RmsNormEpsilon: meta.GetFloat32OrNull($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5f);
    }
}
