using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using LLama;
using LLama.Native;
using Microsoft.Extensions.Logging;

namespace LLMTune.Engine.Inference;

/// <summary>
/// Continuous batching over one llama.cpp context. A single dedicated thread owns the context and runs the decode
/// loop, so there are never two decodes on it at once. Each step puts one token of every generating sequence and
/// chunks of waiting prompts into one batch; a request that arrives joins at the next step. Finished or cancelled
/// sequences give back their slot and KV cells before their result is published. A request takes one of the
/// request slots; the further choices of a request with n &gt; 1 take choice sequences, a separate pool, so they never
/// keep other requests from starting.
/// </summary>
internal sealed class BatchedGenerator : IDisposable
{
    private readonly string _name;
    private readonly LLamaContext _context;
    private readonly SafeLlamaModelHandle _model;
    private readonly ILogger _logger;
    private readonly int _queueCapacity;
    private readonly int _batchSize;
    private readonly Lock _gate = new();
    private readonly List<Sequence> _pending = [];

    // Request slots first ([0, _requestSlots)), then the choice sequences.
    private readonly Sequence?[] _slots;
    private readonly int _requestSlots;
    private readonly List<Sequence> _admissionOrder = [];
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Queue<Action> _commands = new();
    private readonly Thread _thread;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly LLamaBatch _batch = new();
    private bool _stopping;
    private int _active;
    private volatile GeneratorStats _stats = new(0, 0, 0, 0, 0);
    private long _steps;
    private long _tokensGenerated;
    private long _stepTicks;

    public BatchedGenerator(string name, LLamaContext context, int maxSequences, int choiceSequences, int contextLength, int queueCapacity, int batchSize, ILogger logger)
    {
        _requestSlots = maxSequences;
        _name = name;
        _context = context;
        _model = context.NativeHandle.ModelHandle;
        _logger = logger;
        _slots = new Sequence?[maxSequences + choiceSequences];
        ContextLength = contextLength;
        _queueCapacity = queueCapacity;
        _batchSize = batchSize;
        _thread = new Thread(Run) { IsBackground = true, Name = $"llm-decode:{name}" };
        _thread.Start();
    }

    public int ContextLength { get; }

    /// <summary>Most choices one request may ask for: its own slot and every choice sequence.</summary>
    public int MaxChoices => _slots.Length - _requestSlots + 1;

    public GeneratorStats Stats => _stats;

    /// <summary>
    /// Queues a tokenized request, one sequence per choice; throws <see cref="EngineBusyException"/> when the wait queue
    /// is full. The choices are admitted together: the first evaluates the prompt, the others copy its KV cells.
    /// </summary>
    public IReadOnlyList<Generation> Enqueue(int[] promptTokens, int maxTokens, GenerationRequest request, Func<int, SafeLLamaSamplerChainHandle> createSampler, CancellationToken cancellationToken)
    {
        var head = new Sequence(promptTokens, maxTokens, request.Stop, () => createSampler(0), logits: null, cancellationToken, _wake) { TopLogprobs = request.TopLogprobs };
        for (var choice = 1; choice < request.Choices; choice++)
        {
            var index = choice;
            head.Forks.Add(new Sequence(promptTokens, maxTokens, request.Stop, () => createSampler(index), logits: null, cancellationToken, _wake)
            {
                TopLogprobs = request.TopLogprobs,
                IsFork = true,
            });
        }

        EnqueueCore(head);
        return head.Forks.Prepend(head).Select(s => new Generation(promptTokens.Length, s.Tokens.Reader, s.Result.Task, cancellationToken)).ToArray();
    }

    /// <summary>The logits after <paramref name="promptTokens"/> (the next-token distribution), computed in the batch loop like any request.</summary>
    public async Task<float[]> EvaluateAsync(int[] promptTokens, CancellationToken cancellationToken)
    {
        var logits = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sequence = EnqueueCore(new Sequence(promptTokens, 1, [], static () => throw new UnreachableException(), logits, cancellationToken, _wake));
        var result = await sequence.Result.Task.ConfigureAwait(false);
        if (result.FinishReason == FinishReason.Cancelled)
        {
            throw new OperationCanceledException(cancellationToken);
        }

        return await logits.Task.ConfigureAwait(false);
    }

    private Sequence EnqueueCore(Sequence sequence)
    {
        lock (_gate)
        {
            if (_stopping)
            {
                sequence.CancellationRegistration.Dispose();
                throw new ModelUnloadedException(_name);
            }

            if (_pending.Count >= _queueCapacity + FreeSlots(0, _requestSlots))
            {
                sequence.CancellationRegistration.Dispose();
                sequence.Forks.ForEach(f => f.CancellationRegistration.Dispose());
                throw new EngineBusyException(_name, _active, _pending.Count, _queueCapacity);
            }

            _pending.Add(sequence);
        }

        PublishStats();
        _wake.Release();
        return sequence;
    }

    /// <summary>Runs <paramref name="action"/> on the decode thread between two steps (e.g. to change LoRA adapters).</summary>
    public Task RunBetweenStepsAsync(Action<LLamaContext> action)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_stopping)
            {
                throw new ModelUnloadedException(_name);
            }

            _commands.Enqueue(() =>
            {
                try
                {
                    action(_context);
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            });
        }

        _wake.Release();
        return done.Task;
    }

    /// <summary>Stops the loop: queued and running requests fail with <see cref="ModelUnloadedException"/>; the context is freed.</summary>
    public Task StopAsync()
    {
        lock (_gate)
        {
            _stopping = true;
        }

        _wake.Release();
        return _exited.Task;
    }

    public void Dispose() => StopAsync().GetAwaiter().GetResult();

    private void Run()
    {
        try
        {
            while (Step())
            {
            }
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Decode loop of {Model} failed", _name);
            FailAll(new InferenceFailedException($"The decode loop of '{_name}' failed: {e.Message}"));
        }
        finally
        {
            FailAll(new ModelUnloadedException(_name));
            RunCommands();
            _batch.Clear();
            _context.Dispose();
            _exited.TrySetResult();
        }
    }

    /// <summary>One iteration: commands, drop cancelled, admit, decode, sample. Returns false to stop.</summary>
    private bool Step()
    {
        RunCommands();
        lock (_gate)
        {
            if (_stopping)
            {
                return false;
            }
        }

        foreach (var sequence in _admissionOrder.ToArray())
        {
            if (sequence.CancellationToken.IsCancellationRequested)
            {
                Finish(sequence, FinishReason.Cancelled);
            }
        }

        Admit();
        if (_admissionOrder.Count == 0)
        {
            PublishStats();
            _wake.Wait();
            return true;
        }

        var stepStarted = Stopwatch.GetTimestamp();
        BuildBatch();
        var result = _context.NativeHandle.Decode(_batch);
        _steps++;
        if (result != DecodeResult.Ok)
        {
            var failed = _admissionOrder.Where(s => s.LogitIndex >= 0 || s.FedThisStep > 0).ToArray();
            _logger.LogWarning("llama_decode returned {Result} for {Model}; failing {Count} sequences", result, _name, failed.Length);
            foreach (var sequence in failed)
            {
                Fail(sequence, new InferenceFailedException($"llama.cpp could not decode the batch ({result})."));
            }

            return true;
        }

        foreach (var sequence in _admissionOrder.ToArray())
        {
            if (sequence.LogitIndex >= 0)
            {
                SampleNext(sequence);
            }
        }

        _stepTicks += Stopwatch.GetTimestamp() - stepStarted;
        PublishStats();
        return true;
    }

    private void RunCommands()
    {
        while (true)
        {
            Action? command;
            lock (_gate)
            {
                if (!_commands.TryDequeue(out command))
                {
                    return;
                }
            }

            command();
        }
    }

    private void Admit()
    {
        lock (_gate)
        {
            var choicesWaiting = false;
            for (var i = 0; i < _pending.Count;)
            {
                var next = _pending[i];
                if (next.CancellationToken.IsCancellationRequested)
                {
                    _pending.RemoveAt(i);
                    CompleteWithoutSlot(next);
                    next.Forks.ForEach(CompleteWithoutSlot);
                    continue;
                }

                if (FreeSlots(0, _requestSlots) == 0)
                {
                    return;
                }

                // A request's choices start together, so the forks can copy the prompt's cells once it is evaluated.
                // One waiting for choice sequences lets the requests behind it that need none go first; those that
                // need some keep their order, so it is not overtaken for ever.
                if (next.Forks.Count > 0 && (choicesWaiting || FreeSlots(_requestSlots, _slots.Length) < next.Forks.Count))
                {
                    choicesWaiting = true;
                    i++;
                    continue;
                }

                _pending.RemoveAt(i);
                Place(next, Array.IndexOf(_slots, null, 0, _requestSlots));
                foreach (var fork in next.Forks)
                {
                    Place(fork, Array.IndexOf(_slots, null, _requestSlots, _slots.Length - _requestSlots));
                }
            }
        }
    }

    private void Place(Sequence sequence, int slot)
    {
        sequence.SeqId = slot;
        sequence.Sampler = sequence.Logits is null ? sequence.CreateSampler() : null;
        _slots[slot] = sequence;
        _active++;
        _admissionOrder.Add(sequence);
    }

    private int FreeSlots(int from, int to)
    {
        var free = 0;
        for (var slot = from; slot < to; slot++)
        {
            free += _slots[slot] is null ? 1 : 0;
        }

        return free;
    }

    private void BuildBatch()
    {
        _batch.Clear();
        var budget = _batchSize;

        // Plan first: one token for every running sequence, so a long prompt never stalls them, then prompt
        // chunks in arrival order.
        foreach (var sequence in _admissionOrder)
        {
            sequence.LogitIndex = -1;
            sequence.FedThisStep = 0;
            if (sequence.IsFork)
            {
                continue; // starts from its head's cells once the head has evaluated the prompt
            }

            if (sequence.PromptFed == sequence.Prompt.Length && budget > 0)
            {
                sequence.FedThisStep = 1;
                budget--;
            }
        }

        foreach (var sequence in _admissionOrder)
        {
            var remaining = sequence.Prompt.Length - sequence.PromptFed;
            if (budget > 0 && remaining > 0 && !sequence.IsFork)
            {
                sequence.FedThisStep = Math.Min(remaining, budget);
                budget -= sequence.FedThisStep;
            }
        }

        // Then add tokens in sequence-id order: with one KV stream per sequence llama.cpp only puts sequences with
        // consecutive ids in the same micro-batch, so any other order splits the step into several graph runs.
        foreach (var sequence in _slots)
        {
            if (sequence is null || sequence.FedThisStep == 0)
            {
                continue;
            }

            if (sequence.PromptFed == sequence.Prompt.Length)
            {
                sequence.LogitIndex = _batch.Add((LLamaToken)sequence.LastToken, sequence.Position, (LLamaSeqId)sequence.SeqId, true);
                sequence.Position++;
                continue;
            }

            for (var i = 0; i < sequence.FedThisStep; i++)
            {
                var last = sequence.PromptFed + 1 == sequence.Prompt.Length;
                var index = _batch.Add((LLamaToken)sequence.Prompt[sequence.PromptFed], sequence.Position, (LLamaSeqId)sequence.SeqId, last);
                if (last)
                {
                    sequence.LogitIndex = index;
                }

                sequence.PromptFed++;
                sequence.Position++;
            }
        }
    }

    private void SampleNext(Sequence sequence)
    {
        if (sequence.Logits is { } logits)
        {
            logits.TrySetResult(_context.NativeHandle.GetLogitsIth(sequence.LogitIndex).ToArray());
            Finish(sequence, FinishReason.Length);
            return;
        }

        if (sequence.CompletionTokens == 0 && sequence.Forks.Count > 0)
        {
            StartForks(sequence);
        }

        var token = sequence.Sampler!.Sample(_context.NativeHandle, sequence.LogitIndex);
        var logprob = sequence.TopLogprobs is { } top ? Logprob(sequence.LogitIndex, token, top) : null;
        if (logprob is not null)
        {
            sequence.Logprobs.Add(logprob);
        }

        _tokensGenerated++;
        sequence.CompletionTokens++;
        if (sequence.CompletionTokens == 1)
        {
            sequence.TimeToFirstToken = sequence.Clock.Elapsed;
        }

        string text;
        FinishReason? finish = null;
        if (token.IsEndOfGeneration(_model.Vocab))
        {
            text = sequence.Filter.Flush();
            finish = FinishReason.Stop;
        }
        else
        {
            text = sequence.Filter.Push(Piece(token));
            if (sequence.Filter.Stopped)
            {
                finish = FinishReason.Stop;
            }
            else if (sequence.CompletionTokens >= sequence.MaxTokens)
            {
                text += sequence.Filter.Flush();
                finish = FinishReason.Length;
            }
        }

        if (finish is { } reason)
        {
            Finish(sequence, reason, new GeneratedTokenDraft((int)token, text, logprob));
        }
        else
        {
            sequence.LastToken = (int)token;
            sequence.Tokens.Writer.TryWrite(new GeneratedToken((int)token, text, sequence.CompletionTokens - 1) { Logprob = logprob });
        }
    }

    /// <summary>
    /// The head's prompt is in the KV cache and its logits are computed: each fork takes a copy of the cells (no second
    /// evaluation of the prompt) and samples its first token from the same logits.
    /// </summary>
    private void StartForks(Sequence head)
    {
        foreach (var fork in head.Forks)
        {
            if (fork.SeqId < 0)
            {
                continue; // already cancelled
            }

            _context.NativeHandle.MemorySequenceCopy((LLamaSeqId)head.SeqId, (LLamaSeqId)fork.SeqId, -1, -1);
            fork.PromptFed = fork.Prompt.Length;
            fork.Position = head.Position;
            fork.IsFork = false;
            fork.LogitIndex = head.LogitIndex;
            SampleNext(fork);
            fork.LogitIndex = -1; // sampled; the step's loop must not sample it again
        }
    }

    /// <summary>Log-softmax of the raw logits at <paramref name="logitIndex"/>: the chosen token's and the <paramref name="top"/> best.</summary>
    private TokenLogprob Logprob(int logitIndex, LLamaToken chosen, int top)
    {
        var logits = _context.NativeHandle.GetLogitsIth(logitIndex);
        var max = float.NegativeInfinity;
        foreach (var logit in logits)
        {
            max = Math.Max(max, logit);
        }

        double sum = 0;
        foreach (var logit in logits)
        {
            sum += Math.Exp(logit - max);
        }

        var logSum = max + (float)Math.Log(sum);
        var best = new List<TokenAlternative>(top);
        if (top > 0)
        {
            // A bounded min-heap keeps the best `top` ids in one pass over the vocabulary.
            var heap = new PriorityQueue<int, float>(top + 1);
            for (var id = 0; id < logits.Length; id++)
            {
                heap.Enqueue(id, logits[id]);
                if (heap.Count > top)
                {
                    heap.Dequeue();
                }
            }

            var ids = new int[heap.Count];
            for (var i = ids.Length - 1; i >= 0; i--)
            {
                ids[i] = heap.Dequeue();
            }

            foreach (var id in ids)
            {
                var bytes = Piece((LLamaToken)id).ToArray();
                best.Add(new TokenAlternative(Encoding.UTF8.GetString(bytes), bytes, logits[id] - logSum));
            }
        }

        var chosenBytes = Piece(chosen).ToArray();
        return new TokenLogprob(Encoding.UTF8.GetString(chosenBytes), chosenBytes, logits[(int)chosen] - logSum, best);
    }

    private byte[] _pieceBuffer = new byte[64];

    private ReadOnlySpan<byte> Piece(LLamaToken token)
    {
        var length = (int)_model.TokenToSpan(token, _pieceBuffer, 0, false);
        if (length > _pieceBuffer.Length)
        {
            _pieceBuffer = new byte[length * 2];
            length = (int)_model.TokenToSpan(token, _pieceBuffer, 0, false);
        }

        return _pieceBuffer.AsSpan(0, length);
    }

    private readonly record struct GeneratedTokenDraft(int TokenId, string Text, TokenLogprob? Logprob);

    /// <summary>Frees the slot and KV cells, then publishes the result (so observers of the result see the slot free).</summary>
    private void Finish(Sequence sequence, FinishReason reason, GeneratedTokenDraft? lastToken = null)
    {
        Release(sequence);
        var result = new GenerationResult(
            sequence.Filter.Text,
            sequence.Prompt.Length,
            sequence.CompletionTokens,
            reason,
            sequence.TimeToFirstToken,
            sequence.Clock.Elapsed)
        {
            Logprobs = sequence.TopLogprobs is null ? null : sequence.Logprobs,
        };
        if (lastToken is { } draft)
        {
            sequence.Tokens.Writer.TryWrite(new GeneratedToken(draft.TokenId, draft.Text, sequence.CompletionTokens - 1, result) { Logprob = draft.Logprob });
        }

        sequence.Tokens.Writer.TryComplete();
        sequence.Result.TrySetResult(result);
    }

    private void Fail(Sequence sequence, Exception error)
    {
        Release(sequence);

        // Forks that never got the prompt's cells cannot go on without their head.
        foreach (var fork in sequence.Forks.Where(f => f.IsFork && f.SeqId >= 0))
        {
            Fail(fork, error);
        }

        sequence.Logits?.TrySetException(error);
        sequence.Tokens.Writer.TryComplete(error);
        sequence.Result.TrySetException(error);
    }

    private void Release(Sequence sequence)
    {
        if (sequence.SeqId >= 0)
        {
            _context.NativeHandle.MemorySequenceRemove((LLamaSeqId)sequence.SeqId, -1, -1);
            lock (_gate)
            {
                _slots[sequence.SeqId] = null;
                _active--;
            }

            _admissionOrder.Remove(sequence);
            sequence.SeqId = -1;
        }

        sequence.Sampler?.Dispose();
        sequence.Sampler = null;
        sequence.CancellationRegistration.Dispose();
        PublishStats();
    }

    private void CompleteWithoutSlot(Sequence sequence)
    {
        sequence.CancellationRegistration.Dispose();
        sequence.Tokens.Writer.TryComplete();
        sequence.Result.TrySetResult(new GenerationResult("", sequence.Prompt.Length, 0, FinishReason.Cancelled, TimeSpan.Zero, sequence.Clock.Elapsed));
    }

    private void FailAll(Exception error)
    {
        foreach (var sequence in _admissionOrder.ToArray())
        {
            Fail(sequence, error);
        }

        lock (_gate)
        {
            foreach (var head in _pending)
            {
                foreach (var queued in head.Forks.Prepend(head))
                {
                    queued.CancellationRegistration.Dispose();
                    queued.Logits?.TrySetException(error);
                    queued.Tokens.Writer.TryComplete(error);
                    queued.Result.TrySetException(error);
                }
            }

            _pending.Clear();
        }

        PublishStats();
    }

    private void PublishStats()
    {
        int active, queued;
        lock (_gate)
        {
            active = _active;
            queued = _pending.Count;
        }

        var cells = 0;
        if (Thread.CurrentThread == _thread)
        {
            // Counted from llama.cpp's own KV bookkeeping, so a leaked sequence would show here.
            for (var seq = 0; seq < _slots.Length; seq++)
            {
                var max = _context.NativeHandle.MemorySequenceMaxPosition((LLamaSeqId)seq);
                if (max.Value >= 0)
                {
                    cells += max.Value - _context.NativeHandle.MemorySequenceMinPosition((LLamaSeqId)seq).Value + 1;
                }
            }
        }
        else
        {
            cells = _stats.KvCellsInUse;
        }

        _stats = new GeneratorStats(active, queued, cells, _steps, _tokensGenerated) { StepTime = Stopwatch.GetElapsedTime(0, _stepTicks) };
    }

    private sealed class Sequence(
        int[] prompt,
        int maxTokens,
        IReadOnlyList<string> stop,
        Func<SafeLLamaSamplerChainHandle> createSampler,
        TaskCompletionSource<float[]>? logits,
        CancellationToken cancellationToken,
        SemaphoreSlim wake)
    {
        public int[] Prompt { get; } = prompt;
        public int MaxTokens { get; } = maxTokens;
        public Func<SafeLLamaSamplerChainHandle> CreateSampler { get; } = createSampler;
        public TaskCompletionSource<float[]>? Logits { get; } = logits;
        public CancellationToken CancellationToken { get; } = cancellationToken;

        // Wakes an idle loop so a cancelled request that is still queued is dropped promptly.
        public CancellationTokenRegistration CancellationRegistration { get; } = cancellationToken.Register(static state => ((SemaphoreSlim)state!).Release(), wake);
        public StopSequenceFilter Filter { get; } = new(stop);
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public Channel<GeneratedToken> Tokens { get; } = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public TaskCompletionSource<GenerationResult> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public SafeLLamaSamplerChainHandle? Sampler { get; set; }
        public int SeqId { get; set; } = -1;
        public int PromptFed { get; set; }
        public int Position { get; set; }
        public int LastToken { get; set; }
        public int CompletionTokens { get; set; }
        public int LogitIndex { get; set; } = -1;
        public int FedThisStep { get; set; }
        public TimeSpan TimeToFirstToken { get; set; }

        /// <summary>The request's other choices, queued and admitted with this one (the head).</summary>
        public List<Sequence> Forks { get; } = [];

        /// <summary>A choice that waits for its head's prompt cells instead of evaluating the prompt itself.</summary>
        public bool IsFork { get; set; }

        public int? TopLogprobs { get; init; }
        public List<TokenLogprob> Logprobs { get; } = [];
    }
}
