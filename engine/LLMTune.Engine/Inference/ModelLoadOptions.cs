namespace LLMTune.Engine.Inference;

/// <summary>A LoRA adapter file (GGUF, <c>adapter.type</c> = lora) and the scale it is applied with.</summary>
public sealed record LoraAdapterReference(string Path, float Scale = 1f);

/// <summary>A fine-tuned variant of a loaded base model: its adapters, applied in its own context.</summary>
public sealed record ModelVariantOptions(string Id, IReadOnlyList<LoraAdapterReference> Adapters);

public sealed record ModelLoadOptions
{
    public required string Path { get; init; }

    /// <summary>Context length of one sequence (prompt + completion); null uses the model's trained length, capped at 4096.</summary>
    public int? ContextLength { get; init; }

    /// <summary>Sequences decoded together in one batch (the continuous-batching width).</summary>
    public int MaxConcurrentSequences { get; init; } = 8;

    /// <summary>
    /// Sequences beyond <see cref="MaxConcurrentSequences"/> that only the second and later choices of requests with
    /// n &gt; 1 use (shared by all such requests), so one request's choices never take the slots other requests need.
    /// A request may ask for at most 1 + this many choices. Each is a KV stream of <see cref="ContextLength"/> cells.
    /// </summary>
    public int ChoiceSequences { get; init; } = GenerationRequest.MaxChoices - 1;

    /// <summary>Requests that may wait for a free sequence slot; beyond that requests fail with <see cref="EngineBusyException"/>.</summary>
    public int QueueCapacity { get; init; } = 64;

    /// <summary>CPU threads for decoding; null uses every core.</summary>
    public int? Threads { get; init; }

    /// <summary>Most tokens per decode step (prompt chunks share it with the running sequences).</summary>
    public int BatchSize { get; init; } = 512;

    /// <summary>Memory-map the weights (llama.cpp's usual mode) instead of reading them into allocated memory.</summary>
    public bool MemoryMap { get; init; } = true;

    /// <summary>
    /// One KV pool shared by all sequences instead of one stream per sequence. Per-sequence streams are the default:
    /// attention then only visits a sequence's own cells, where a shared pool makes every token scan (and mask) the
    /// cells of all live sequences.
    /// </summary>
    public bool UnifiedKvCache { get; init; }

    /// <summary>Flash attention; null lets llama.cpp decide.</summary>
    public bool? FlashAttention { get; init; }

    /// <summary>LoRA variants created with the model.</summary>
    public IReadOnlyList<ModelVariantOptions> Variants { get; init; } = [];

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Path);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentSequences, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(QueueCapacity);
        ArgumentOutOfRangeException.ThrowIfNegative(ChoiceSequences);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ChoiceSequences, GenerationRequest.MaxChoices - 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1);
        if (ContextLength is < 8)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "A context needs at least 8 tokens.");
        }

        if (Threads is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be at least 1.");
        }
    }
}

/// <summary>What a loaded model is, for listings and the models endpoint.</summary>
public sealed record ModelSummary(
    string Id,
    string Architecture,
    string? Name,
    long ParameterCount,
    int TrainedContextLength,
    int ContextLength,
    int VocabularySize,
    int EmbeddingLength,
    int LayerCount,
    long FileSizeBytes,
    bool HasChatTemplate,
    int MaxConcurrentSequences,
    IReadOnlyList<string> Variants);

/// <summary>A snapshot of one model variant's scheduler, updated after every decode step.</summary>
public sealed record GeneratorStats(
    int ActiveSequences,
    int QueuedRequests,
    int KvCellsInUse,
    long DecodeSteps,
    long TokensGenerated)
{
    /// <summary>Time the loop spent in decode steps (decode and sampling), so callers can tell a busy engine from an idle one.</summary>
    public TimeSpan StepTime { get; init; }
}
