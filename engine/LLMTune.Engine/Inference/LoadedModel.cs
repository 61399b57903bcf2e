using System.Runtime.CompilerServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LLMTune.Engine.Gguf;
using Microsoft.Extensions.Logging;

namespace LLMTune.Engine.Inference;

/// <summary>
/// A GGUF model held in memory once, serving its base variant and any number of LoRA variants. Each variant has
/// its own llama.cpp context (KV cache, adapters) and decode loop; all of them share the weights.
/// </summary>
public sealed partial class LoadedModel : IAsyncDisposable
{
    private const string BaseVariant = "";
    private readonly LLamaWeights _weights;
    private readonly ModelLoadOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<string, BatchedGenerator> _generators = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IReadOnlyList<LoraAdapterReference>> _variantAdapters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (LoraAdapter Adapter, int Users)> _adapters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly ReaderWriterLockSlim _weightsInUse = new(LockRecursionPolicy.SupportsRecursion);
    private readonly Lock _gate = new();
    private readonly string? _chatTemplate;
    private readonly Lazy<GgufFile> _ggufHeader;
    private readonly Lazy<LLamaToken[]> _endOfGenerationTokens;
    private bool _disposed;

    private LoadedModel(string id, ModelLoadOptions options, LLamaWeights weights, ILogger logger)
    {
        _ggufHeader = new Lazy<GgufFile>(() => GgufFile.Read(options.Path));
        _endOfGenerationTokens = new Lazy<LLamaToken[]>(() =>
            Enumerable.Range(0, weights.Vocab.Count).Select(i => (LLamaToken)i).Where(t => t.IsEndOfGeneration(weights.Vocab)).ToArray());
        Id = id;
        _options = options;
        _weights = weights;
        _logger = logger;
        _chatTemplate = weights.Metadata.TryGetValue("tokenizer.chat_template", out var template) ? template : null;
        ContextLength = options.ContextLength ?? Math.Min(weights.ContextSize, 4096);
        Summary = new ModelSummary(
            Id: id,
            Architecture: weights.Metadata.GetValueOrDefault("general.architecture") ?? "unknown",
            Name: weights.Metadata.GetValueOrDefault("general.name"),
            ParameterCount: (long)weights.ParameterCount,
            TrainedContextLength: weights.ContextSize,
            ContextLength: ContextLength,
            VocabularySize: weights.Vocab.Count,
            EmbeddingLength: weights.EmbeddingSize,
            LayerCount: weights.NativeHandle.LayerCount,
            FileSizeBytes: new FileInfo(options.Path).Length,
            HasChatTemplate: _chatTemplate is not null,
            MaxConcurrentSequences: options.MaxConcurrentSequences,
            Variants: []);
    }

    public string Id { get; }

    /// <summary>Tokens one sequence may hold (prompt + completion).</summary>
    public int ContextLength { get; }

    public ModelSummary Summary
    {
        get { lock (_gate) { return field with { Variants = _generators.Keys.Where(k => k != BaseVariant).Order().ToArray() }; } }
        private init;
    }

    public IReadOnlyList<string> Variants => Summary.Variants;

    internal static async Task<LoadedModel> LoadAsync(string id, ModelLoadOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        options.Validate();
        if (!File.Exists(options.Path))
        {
            throw new ModelLoadException($"Model file '{options.Path}' does not exist.");
        }

        LLamaWeights weights;
        try
        {
            weights = await LLamaWeights.LoadFromFileAsync(new ModelParams(options.Path)
            {
                GpuLayerCount = 0,
                // Mapped weights load fast, share the page cache between processes and are unmapped on unload.
                LoadMode = options.MemoryMap ? LLamaLoadMode.MemoryMap : LLamaLoadMode.None,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is LLama.Exceptions.LoadWeightsFailedException or LLama.Exceptions.RuntimeError)
        {
            throw new ModelLoadException($"llama.cpp could not load '{options.Path}': {e.Message}", e);
        }

        var model = new LoadedModel(id, options, weights, logger);
        try
        {
            model.StartGenerator(BaseVariant);
            foreach (var variant in options.Variants)
            {
                await model.AddVariantAsync(variant).ConfigureAwait(false);
            }

            return model;
        }
        catch
        {
            await model.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Starts a generation and returns at once; throws <see cref="EngineBusyException"/>,
    /// <see cref="ContextLengthExceededException"/>, <see cref="ModelNotFoundException"/> (unknown variant) or
    /// <see cref="ArgumentException"/> (invalid request) before anything is queued.
    /// </summary>
    public Generation Generate(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Choices != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.Choices, "Use GenerateChoices for more than one choice.");
        }

        return GenerateChoices(request, cancellationToken)[0];
    }

    /// <summary>
    /// Starts <see cref="GenerationRequest.Choices"/> generations of one prompt, in choice order; the prompt is
    /// evaluated once and the other choices copy its KV cells. Throws like <see cref="Generate"/>.
    /// </summary>
    public IReadOnlyList<Generation> GenerateChoices(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        using var weights = UseWeights();
        CheckGrammar(request);
        var generator = GetGenerator(request.Variant);
        if (request.Choices > generator.MaxChoices)
        {
            throw new ArgumentOutOfRangeException(nameof(GenerationRequest.Choices), request.Choices,
                $"This model has {generator.MaxChoices - 1} sequences for further choices, so it gives at most {generator.MaxChoices} choices.");
        }

        foreach (var id in request.LogitBias.Keys.Where(id => id < 0 || id >= _weights.Vocab.Count).Take(1))
        {
            throw new ArgumentOutOfRangeException(nameof(GenerationRequest.LogitBias), id,
                $"Logit bias token ids must be between 0 and {_weights.Vocab.Count - 1}; {id} is not.");
        }

        var prompt = TokenizePrompt(request);
        var maxTokens = CheckContext(prompt.Length, request.MaxTokens);
        return generator.Enqueue(prompt, maxTokens, request, choice => CreateSampler(request, choice), cancellationToken);
    }

    /// <summary>
    /// Streams the generated tokens; the last one carries the <see cref="GenerationResult"/>. Cancellation throws
    /// <see cref="OperationCanceledException"/>; leaving the loop early cancels the generation and frees its slot.
    /// </summary>
    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var generation = Generate(request, lifetime.Token);
        try
        {
            await foreach (var token in generation.ReadTokensAsync(CancellationToken.None).ConfigureAwait(false))
            {
                yield return token;
            }
        }
        finally
        {
            await lifetime.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Runs a generation to its end; a cancelled one returns what it produced with <see cref="FinishReason.Cancelled"/>.</summary>
    public Task<GenerationResult> CompleteAsync(GenerationRequest request, CancellationToken cancellationToken = default) =>
        Generate(request, cancellationToken).Completion;

    /// <summary>
    /// The next-token logits after <paramref name="prompt"/> (tokenized as a raw prompt), computed by the variant's
    /// batch loop. Used to compare variants and to check trained weights against llama.cpp.
    /// </summary>
    public Task<float[]> GetNextTokenLogitsAsync(string prompt, string? variant = null, CancellationToken cancellationToken = default)
    {
        using var weights = UseWeights();
        var generator = GetGenerator(variant);
        var tokens = Tokenize(prompt, addBos: _weights.Vocab.ShouldAddBOS);
        CheckContext(tokens.Length, 1);
        return generator.EvaluateAsync(tokens, cancellationToken);
    }

    /// <summary>Tokenizes text with the model's vocabulary (special tokens such as <c>&lt;|im_start|&gt;</c> are parsed).</summary>
    public int[] Tokenize(string text, bool addBos = false)
    {
        using var weights = UseWeights();
        var tokens = _weights.NativeHandle.Tokenize(text, addBos, special: true, Encoding.UTF8);
        return Array.ConvertAll(tokens, t => (int)t);
    }

    /// <summary>The text of <paramref name="tokens"/> (control tokens render as nothing).</summary>
    public string Detokenize(IEnumerable<int> tokens)
    {
        using var weights = UseWeights();
        var decoder = new StreamingTokenDecoder(Encoding.UTF8, _weights);
        foreach (var token in tokens)
        {
            decoder.Add(token);
        }

        return decoder.Read();
    }

    /// <summary>
    /// The prompt text for <paramref name="messages"/> under this model's chat template; ChatML when it has none, or
    /// when llama.cpp does not recognise it (logged once).
    /// </summary>
    public string FormatChat(IReadOnlyList<ChatMessage> messages)
    {
        var prompt = ChatPromptFormatter.FormatOrChatMl(_chatTemplate, messages, out var usedFallback);
        if (usedFallback && Interlocked.Exchange(ref _templateFallbackLogged, 1) == 0)
        {
            _logger.LogWarning("llama.cpp does not recognise the chat template of {Model}; using ChatML", Id);
        }

        return prompt;
    }

    private int _templateFallbackLogged;

    /// <summary>
    /// One embedding per input: the mean of the last hidden states over the input's tokens, L2-normalised. Runs on a
    /// context of its own (one input at a time), so it never waits behind or slows the generation loop's batches.
    /// </summary>
    public Task<float[][]> EmbedAsync(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        foreach (var tokens in inputs)
        {
            if (tokens.Length == 0)
            {
                throw new ArgumentException("An input to embed is empty.", nameof(inputs));
            }

            if (tokens.Length > ContextLength)
            {
                throw new ContextLengthExceededException(tokens.Length, null, ContextLength);
            }

            foreach (var id in tokens.Where(id => id < 0 || id >= Summary.VocabularySize).Take(1))
            {
                throw new ArgumentOutOfRangeException(nameof(inputs), id, $"Token ids must be between 0 and {Summary.VocabularySize - 1}; {id} is not.");
            }
        }

        return EmbedCoreAsync(inputs, cancellationToken);
    }

    /// <summary>The token ids an embedding input text stands for (with BOS where the model adds one).</summary>
    public int[] TokenizeForEmbedding(string text) => Tokenize(text, _weights.Vocab.ShouldAddBOS);

    private async Task<float[][]> EmbedCoreAsync(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken)
    {
        await _embedding.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Native work on a pool thread; the weights lease is a thread-affine lock, taken and left on that thread.
            return await Task.Run(() =>
            {
                using var weights = UseWeights();
                var context = _embeddingContext ??= CreateEmbeddingContext();
                var result = new float[inputs.Count][];
                var batch = new LLamaBatch();
                for (var i = 0; i < inputs.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    batch.Clear();
                    for (var position = 0; position < inputs[i].Length; position++)
                    {
                        batch.Add((LLamaToken)inputs[i][position], position, (LLamaSeqId)0, true);
                    }

                    context.NativeHandle.MemorySequenceRemove((LLamaSeqId)0, -1, -1);
                    var decoded = context.NativeHandle.Decode(batch);
                    if (decoded != DecodeResult.Ok)
                    {
                        throw new InferenceFailedException($"llama.cpp could not compute embeddings ({decoded}).");
                    }

                    result[i] = Normalize(context.NativeHandle.GetEmbeddingsSeq((LLamaSeqId)0).ToArray());
                }

                context.NativeHandle.MemorySequenceRemove((LLamaSeqId)0, -1, -1);
                return result;
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _embedding.Release();
        }
    }

    private static float[] Normalize(float[] vector)
    {
        double norm = 0;
        foreach (var x in vector)
        {
            norm += (double)x * x;
        }

        var scale = norm > 0 ? (float)(1 / Math.Sqrt(norm)) : 0f;
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] *= scale;
        }

        return vector;
    }

    private LLamaContext CreateEmbeddingContext()
    {
        ThrowIfDisposed();
        var contextParams = new ModelParams(_options.Path)
        {
            // Mean pooling needs a whole input in one micro-batch.
            ContextSize = (uint)ContextLength,
            BatchSize = (uint)ContextLength,
            UBatchSize = (uint)ContextLength,
            SeqMax = 1,
            Embeddings = true,
            PoolingType = LLamaPoolingType.Mean,
            Threads = _options.Threads ?? Environment.ProcessorCount,
            BatchThreads = _options.Threads ?? Environment.ProcessorCount,
        };
        try
        {
            return _weights.CreateContext(contextParams, _logger);
        }
        catch (Exception e) when (e is LLama.Exceptions.RuntimeError)
        {
            throw new ModelLoadException($"llama.cpp could not create an embedding context for '{Id}': {e.Message}", e);
        }
    }

    private readonly SemaphoreSlim _embedding = new(1, 1);
    private LLamaContext? _embeddingContext;

    public GeneratorStats GetStats(string? variant = null) => GetGenerator(variant).Stats;

    /// <summary>Loads the variant's adapters (each file once per model) and starts its context and decode loop.</summary>
    public async Task AddVariantAsync(ModelVariantOptions variant)
    {
        ArgumentNullException.ThrowIfNull(variant);
        ArgumentException.ThrowIfNullOrEmpty(variant.Id);
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            lock (_gate)
            {
                if (_generators.ContainsKey(variant.Id))
                {
                    throw new ModelAlreadyLoadedException(Id, variant.Id);
                }
            }

            var adapters = AcquireAdapters(variant.Adapters);
            try
            {
                var generator = StartGenerator(variant.Id, publish: false);
                try
                {
                    await generator.RunBetweenStepsAsync(context => ApplyAdapters(context, adapters)).ConfigureAwait(false);
                }
                catch
                {
                    await generator.StopAsync().ConfigureAwait(false);
                    throw;
                }

                lock (_gate)
                {
                    _generators[variant.Id] = generator;
                    _variantAdapters[variant.Id] = variant.Adapters;
                }
            }
            catch
            {
                ReleaseAdapters(variant.Adapters);
                throw;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Replaces a variant's adapters between two decode steps (an empty list gives base behaviour). Sequences
    /// already running continue under the new adapters.
    /// </summary>
    public async Task SetVariantAdaptersAsync(string variantId, IReadOnlyList<LoraAdapterReference> adapters)
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            var generator = GetGenerator(variantId);
            var loaded = AcquireAdapters(adapters);
            try
            {
                await generator.RunBetweenStepsAsync(context => ApplyAdapters(context, loaded)).ConfigureAwait(false);
            }
            catch
            {
                ReleaseAdapters(adapters);
                throw;
            }

            IReadOnlyList<LoraAdapterReference> previous;
            lock (_gate)
            {
                previous = _variantAdapters[variantId];
                _variantAdapters[variantId] = adapters;
            }

            ReleaseAdapters(previous);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops the variant (its queued and running requests fail with <see cref="ModelUnloadedException"/>), frees its context and unused adapters.</summary>
    public async Task RemoveVariantAsync(string variantId)
    {
        ArgumentException.ThrowIfNullOrEmpty(variantId);
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            BatchedGenerator generator;
            IReadOnlyList<LoraAdapterReference> adapters;
            lock (_gate)
            {
                if (!_generators.Remove(variantId, out generator!))
                {
                    throw new ModelNotFoundException(Id, variantId);
                }

                _variantAdapters.Remove(variantId, out adapters!);
            }

            await generator.StopAsync().ConfigureAwait(false);
            ReleaseAdapters(adapters);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops every decode loop, frees the contexts and adapters, then the weights.</summary>
    public async ValueTask DisposeAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            BatchedGenerator[] generators;
            lock (_gate)
            {
                _disposed = true;
                generators = _generators.Values.ToArray();
                _generators.Clear();
                _variantAdapters.Clear();
            }

            await Task.WhenAll(generators.Select(g => g.StopAsync())).ConfigureAwait(false);
            await _embedding.WaitAsync().ConfigureAwait(false);
            _embeddingContext?.Dispose();
            _embeddingContext = null;
            foreach (var (adapter, _) in _adapters.Values)
            {
                adapter.Unload();
            }

            _adapters.Clear();

            // Callers still tokenizing on the weights finish first: freeing them under a caller is a native crash.
            _weightsInUse.EnterWriteLock();
            try
            {
                _weights.Dispose();
            }
            finally
            {
                _weightsInUse.ExitWriteLock();
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private BatchedGenerator StartGenerator(string variantId, bool publish = true)
    {
        var contextParams = new ModelParams(_options.Path)
        {
            // Room for every slot's full context, so an admitted sequence never runs out of KV cells.
            ContextSize = (uint)(ContextLength * (_options.MaxConcurrentSequences + _options.ChoiceSequences)),
            SeqMax = (uint)(_options.MaxConcurrentSequences + _options.ChoiceSequences),
            KVUnified = _options.UnifiedKvCache,
            BatchSize = (uint)_options.BatchSize,
            UBatchSize = (uint)_options.BatchSize,
            Threads = _options.Threads ?? Environment.ProcessorCount,
            BatchThreads = _options.Threads ?? Environment.ProcessorCount,
        };
        if (_options.FlashAttention is { } flashAttention)
        {
            contextParams.FlashAttention = flashAttention;
        }

        LLamaContext context;
        try
        {
            context = _weights.CreateContext(contextParams, _logger);
        }
        catch (Exception e) when (e is LLama.Exceptions.RuntimeError)
        {
            throw new ModelLoadException($"llama.cpp could not create a context for '{Id}': {e.Message}", e);
        }

        var name = variantId == BaseVariant ? Id : $"{Id}:{variantId}";
        var generator = new BatchedGenerator(name, context, _options.MaxConcurrentSequences, _options.ChoiceSequences, ContextLength, _options.QueueCapacity, _options.BatchSize, _logger);
        if (publish)
        {
            lock (_gate)
            {
                _generators[variantId] = generator;
            }
        }

        return generator;
    }

    private BatchedGenerator GetGenerator(string? variant)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                throw new ModelUnloadedException(Id);
            }

            return _generators.TryGetValue(variant ?? BaseVariant, out var generator)
                ? generator
                : throw new ModelNotFoundException(Id, variant);
        }
    }

    private int[] TokenizePrompt(GenerationRequest request)
    {
        if (request.Messages is { } messages)
        {
            var text = FormatChat(messages);
            // Templates such as Llama 3's write the BOS token themselves; adding another would change the prompt.
            var bos = _weights.Vocab.BOS;
            var addBos = _weights.Vocab.ShouldAddBOS && !(bos is { } b && text.StartsWith(_weights.Vocab.LLamaTokenToString(b, true) ?? "\0", StringComparison.Ordinal));
            return NonEmpty(Tokenize(text, addBos));
        }

        return NonEmpty(Tokenize(request.Prompt!, _weights.Vocab.ShouldAddBOS));
    }

    private static int[] NonEmpty(int[] tokens) => tokens.Length > 0 ? tokens : throw new ArgumentException("The prompt is empty.");

    private int CheckContext(int promptTokens, int? maxTokens)
    {
        // In long: max_tokens near int.MaxValue must not wrap to a negative sum and slip past the check (then NoKvSlot).
        if (promptTokens >= ContextLength || (long)promptTokens + (maxTokens ?? 1) > ContextLength)
        {
            throw new ContextLengthExceededException(promptTokens, maxTokens, ContextLength);
        }

        return maxTokens ?? ContextLength - promptTokens;
    }

    private SafeLLamaSamplerChainHandle CreateSampler(GenerationRequest request, int choice)
    {
        var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        AddGrammar(chain, request);
        var biases = request.LogitBias.Select(b => new LLamaLogitBias
        {
            Token = b.Key,
            // OpenAI: -100 and 100 ban or force a token; an infinite bias makes that exact whatever the logits.
            Bias = b.Value <= -100 ? float.NegativeInfinity : b.Value >= 100 ? 1e30f : b.Value,
        });
        if (request.IgnoreEndOfGeneration)
        {
            biases = biases.Concat(_endOfGenerationTokens.Value.Select(t => new LLamaLogitBias { Token = t, Bias = float.NegativeInfinity }));
        }

        var bias = biases.ToArray();
        if (bias.Length > 0)
        {
            chain.AddLogitBias(_weights.Vocab.Count, bias);
        }

        if (request.PresencePenalty != 0 || request.FrequencyPenalty != 0)
        {
            // llama.cpp's penalties are OpenAI's (logit -= count * frequency + (count > 0) * presence), counted over
            // the tokens this sampler has accepted: the completion so far, the whole of it.
            chain.AddPenalties(ContextLength, 1f, request.FrequencyPenalty, request.PresencePenalty);
        }

        if (request.Temperature <= 0)
        {
            chain.AddGreedySampler();
            return chain;
        }

        // Temperature first, then the nucleus over the tempered distribution (OpenAI's semantics).
        chain.AddTemperature(request.Temperature);
        if (request.TopP < 1)
        {
            chain.AddTopP(request.TopP, 1);
        }

        // Each choice its own stream of random numbers, reproducible from the request's seed.
        chain.AddDistributionSampler(request.Seed is { } seed ? unchecked(seed + (uint)choice) : (uint)Random.Shared.Next());
        return chain;
    }

    private List<(LoraAdapter Adapter, float Scale)> AcquireAdapters(IReadOnlyList<LoraAdapterReference> references)
    {
        var acquired = new List<(LoraAdapter, float)>();
        var taken = new List<LoraAdapterReference>();
        try
        {
            foreach (var reference in references)
            {
                var path = Path.GetFullPath(reference.Path);
                if (!_adapters.TryGetValue(path, out var entry))
                {
                    if (!File.Exists(path))
                    {
                        throw new ModelLoadException($"LoRA adapter '{reference.Path}' does not exist.");
                    }

                    LoraAdapterValidator.Validate(path, _ggufHeader.Value);

                    LoraAdapter adapter;
                    try
                    {
                        adapter = _weights.NativeHandle.LoadLoraFromFile(path);
                    }
                    catch (Exception e) when (e is LLama.Exceptions.RuntimeError)
                    {
                        throw new ModelLoadException($"llama.cpp could not load LoRA adapter '{reference.Path}' for '{Id}': {e.Message}", e);
                    }

                    entry = (adapter, 0);
                }

                _adapters[path] = (entry.Adapter, entry.Users + 1);
                taken.Add(reference);
                acquired.Add((entry.Adapter, reference.Scale));
            }

            return acquired;
        }
        catch
        {
            ReleaseAdapters(taken);
            throw;
        }
    }

    private void ReleaseAdapters(IEnumerable<LoraAdapterReference> references)
    {
        foreach (var reference in references)
        {
            var path = Path.GetFullPath(reference.Path);
            if (_adapters.TryGetValue(path, out var entry))
            {
                if (entry.Users <= 1)
                {
                    _adapters.Remove(path);
                    entry.Adapter.Unload();
                }
                else
                {
                    _adapters[path] = (entry.Adapter, entry.Users - 1);
                }
            }
        }
    }

    private static void ApplyAdapters(LLamaContext context, List<(LoraAdapter Adapter, float Scale)> adapters) =>
        context.NativeHandle.SetLoraAdapters(adapters.ToArray().AsSpan());

    /// <summary>Holds the weights alive for a caller's synchronous use (tokenizing); throws once the model is unloaded.</summary>
    private WeightsLease UseWeights()
    {
        _weightsInUse.EnterReadLock();
        if (_disposed)
        {
            _weightsInUse.ExitReadLock();
            throw new ModelUnloadedException(Id);
        }

        return new WeightsLease(_weightsInUse);
    }

    private readonly struct WeightsLease(ReaderWriterLockSlim gate) : IDisposable
    {
        public void Dispose() => gate.ExitReadLock();
    }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            throw new ModelUnloadedException(Id);
        }
    }
}
