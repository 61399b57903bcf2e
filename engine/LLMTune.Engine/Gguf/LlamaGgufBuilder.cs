namespace LLMTune.Engine.Gguf;

/// <summary>Shape and seed of a random llama test model; the vocabulary comes from <see cref="GgufTokenizer.CreateByteLevel"/>.</summary>
public sealed record RandomLlamaOptions
{
    public int EmbeddingLength { get; init; } = 64;
    public int BlockCount { get; init; } = 2;
    public int HeadCount { get; init; } = 4;

    /// <summary>KV heads; fewer than <see cref="HeadCount"/> gives grouped-query attention.</summary>
    public int HeadCountKv { get; init; } = 2;

    public int FeedForwardLength { get; init; } = 128;
    public int ContextLength { get; init; } = 512;
    public int Seed { get; init; } = 1;

    /// <summary>Standard deviation of the random weights; larger values make the output depend more on the prompt.</summary>
    public float InitStd { get; init; } = 0.02f;

    public bool TiedOutput { get; init; }
    public string Name { get; init; } = "llmtune-random";
    public string? ChatTemplate { get; init; }
    public GgmlType WeightType { get; init; } = GgmlType.F32;
    public GgufTokenizer? Tokenizer { get; init; }
}

/// <summary>
/// Writes a complete llama-architecture GGUF that llama.cpp (LLamaSharp) loads: hyperparameters, tokenizer,
/// optional chat template, and the weights under llama.cpp's tensor names
/// (<c>token_embd.weight</c>, <c>blk.N.attn_q.weight</c>, …, <c>output.weight</c>) with ne0 = input dimension.
/// </summary>
public sealed class LlamaGgufBuilder
{
    public LlamaGgufBuilder(LlamaModelWeights weights, GgufTokenizer tokenizer)
    {
        Weights = weights ?? throw new ArgumentNullException(nameof(weights));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        weights.Hyperparameters.Validate();
        if (tokenizer.Tokens.Count != weights.Hyperparameters.VocabSize)
        {
            throw new ArgumentException($"The tokenizer has {tokenizer.Tokens.Count} tokens but the model's vocabulary is {weights.Hyperparameters.VocabSize}.");
        }
    }

    /// <summary>ChatML in Jinja, the template Qwen-style models carry; llama.cpp recognises it as "chatml".</summary>
    public const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    public LlamaModelWeights Weights { get; }

    public GgufTokenizer Tokenizer { get; }

    public string Name { get; init; } = "llmtune";

    /// <summary>Written as <c>tokenizer.chat_template</c> when set.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Storage type of the 2-D weight matrices (F32, F16, BF16 or Q8_0); norm vectors stay F32 as llama.cpp expects.</summary>
    public GgmlType WeightType { get; init; } = GgmlType.F32;

    /// <summary>Extra metadata written after the standard keys (e.g. training provenance).</summary>
    public GgufMetadata ExtraMetadata { get; } = new();

    public static LlamaGgufBuilder CreateRandom(RandomLlamaOptions? options = null)
    {
        options ??= new RandomLlamaOptions();
        var tokenizer = options.Tokenizer ?? GgufTokenizer.CreateByteLevel();
        var hp = new LlamaHyperparameters(
            VocabSize: tokenizer.Tokens.Count,
            ContextLength: options.ContextLength,
            EmbeddingLength: options.EmbeddingLength,
            BlockCount: options.BlockCount,
            HeadCount: options.HeadCount,
            HeadCountKv: options.HeadCountKv,
            FeedForwardLength: options.FeedForwardLength);
        var weights = LlamaModelWeights.CreateRandom(hp, options.Seed, options.InitStd, options.TiedOutput);
        return new LlamaGgufBuilder(weights, tokenizer)
        {
            Name = options.Name,
            ChatTemplate = options.ChatTemplate,
            WeightType = options.WeightType,
        };
    }

    /// <summary>Writes a random model to <paramref name="path"/> and returns its builder (weights, tokenizer) for inspection.</summary>
    public static LlamaGgufBuilder WriteRandom(string path, RandomLlamaOptions? options = null)
    {
        var builder = CreateRandom(options);
        builder.Write(path);
        return builder;
    }

    public void Write(string path) => ToWriter().Write(path);

    public GgufWriter ToWriter()
    {
        var hp = Weights.Hyperparameters;
        const string arch = "llama";
        var writer = new GgufWriter();
        var meta = writer.Metadata;
        meta.Set("general.architecture", arch);
        meta.Set("general.name", Name);
        meta.Set("general.alignment", GgufFile.DefaultAlignment);
        meta.Set("general.file_type", (uint)FileTypeOf(WeightType));
        meta.Set($"{arch}.vocab_size", (uint)hp.VocabSize);
        meta.Set($"{arch}.context_length", (uint)hp.ContextLength);
        meta.Set($"{arch}.embedding_length", (uint)hp.EmbeddingLength);
        meta.Set($"{arch}.block_count", (uint)hp.BlockCount);
        meta.Set($"{arch}.feed_forward_length", (uint)hp.FeedForwardLength);
        meta.Set($"{arch}.attention.head_count", (uint)hp.HeadCount);
        meta.Set($"{arch}.attention.head_count_kv", (uint)hp.HeadCountKv);
        meta.Set($"{arch}.rope.dimension_count", (uint)hp.HeadDimension);
        meta.Set($"{arch}.rope.freq_base", hp.RopeFreqBase);
        meta.Set($"{arch}.attention.layer_norm_rms_epsilon", hp.RmsNormEpsilon);
        Tokenizer.WriteTo(meta);
        if (ChatTemplate is not null)
        {
            meta.Set("tokenizer.chat_template", ChatTemplate);
        }

        foreach (var (key, value) in ExtraMetadata)
        {
            meta.Set(key, value);
        }

        long e = hp.EmbeddingLength, f = hp.FeedForwardLength, kv = hp.KvDimension, v = hp.VocabSize;
        void Matrix(string name, long input, long output, float[] values) =>
            writer.AddTensor(name, [input, output], values, input % GgmlTypeInfo.GetLayout(WeightType).BlockSize == 0 ? WeightType : GgmlType.F32);
        void Vector(string name, float[] values) => writer.AddTensor(name, [values.Length], values);

        Matrix("token_embd.weight", e, v, Weights.TokenEmbedding);
        for (var l = 0; l < Weights.Layers.Length; l++)
        {
            var layer = Weights.Layers[l];
            Vector($"blk.{l}.attn_norm.weight", layer.AttentionNorm);
            Matrix($"blk.{l}.attn_q.weight", e, e, layer.Query);
            Matrix($"blk.{l}.attn_k.weight", e, kv, layer.Key);
            Matrix($"blk.{l}.attn_v.weight", e, kv, layer.Value);
            Matrix($"blk.{l}.attn_output.weight", e, e, layer.AttentionOutput);
            Vector($"blk.{l}.ffn_norm.weight", layer.FeedForwardNorm);
            Matrix($"blk.{l}.ffn_gate.weight", e, f, layer.Gate);
            Matrix($"blk.{l}.ffn_up.weight", e, f, layer.Up);
            Matrix($"blk.{l}.ffn_down.weight", f, e, layer.Down);
        }

        Vector("output_norm.weight", Weights.OutputNorm);
        if (Weights.Output is not null)
        {
            Matrix("output.weight", e, v, Weights.Output);
        }

        return writer;
    }

    // llama_ftype numbers for general.file_type.
    private static int FileTypeOf(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q8_0 => 7,
        GgmlType.BF16 => 32,
        _ => throw new NotSupportedException($"Weights cannot be written as {type}."),
    };
}
