using System.Runtime.InteropServices;
using LLMTune.Engine.Native;

namespace LLMTune.Engine.Training;

/// <summary>A LoRA pair on one base weight: <c>W·x + Scale·B·(A·x)</c>, with A [in, rank] and B [rank, out] as llama.cpp stores them.</summary>
internal sealed record LoraPair(string BaseName, ModelTensor A, ModelTensor B, float Scale);

/// <summary>AdamW constants that stay fixed for a run (the learning rate changes per step).</summary>
internal sealed record AdamWSettings(float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f, float WeightDecay = 0f);

/// <summary>
/// The llama forward pass as a static ggml graph over a fixed batch shape, trained with ggml_opt's AdamW.
/// Layout and operations follow llama.cpp's llama graph (RMSNorm, RoPE in NORM mode, grouped-query attention,
/// SwiGLU), so its logits match llama.cpp's for the same weights; see the parity test.
/// </summary>
/// <remarks>
/// The loss is computed in the graph rather than by ggml_opt's built-in cross entropy: that loss's backward
/// assumes every label row sums to one, so rows left out of the loss (prompt tokens, padding) would still
/// push gradients. Here logits are multiplied by a 0/1 row mask before the cross entropy (so those rows get
/// exactly zero gradient) and the mean is rescaled from "all rows" to "rows with a target"; ggml_opt then only
/// sums that scalar (loss type SUM).
/// </remarks>
internal sealed unsafe class LlamaTrainingGraph : IDisposable
{
    private const int RopeModeNorm = 0; // llama.cpp uses LLAMA_ROPE_TYPE_NORM for the llama architecture
    private const int GraphCapacity = 16384;

    /// <summary>
    /// ggml_opt's static graphs are fixed at GGML_DEFAULT_GRAPH_SIZE (2048) nodes for forward + backward + optimizer,
    /// and overflowing them aborts the process. Measured: 652 forward nodes still fit, 775 do not. Larger graphs are
    /// rebuilt per step instead (ggml_opt's dynamic mode, where the graph capacity is ours).
    /// </summary>
    internal const int MaxStaticForwardNodes = 640;

    private readonly LlamaShape _shape;
    private readonly int _sequenceLength;
    private readonly int _rows;
    private readonly Dictionary<string, nint> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (nint A, nint B, float Scale)> _lora = new(StringComparer.Ordinal);
    private readonly List<string> _trainableNames = [];
    private GgmlOptimizerParams* _optimizerParams;

    private nint _ctxStatic;
    private nint _ctxTrain;
    private nint _ctxForward;
    private nint _backend;
    private nint _bufferStatic;
    private nint _schedTrain;
    private nint _schedForward;
    private nint _opt;
    private nint _result;
    private nint _forwardGraph;
    private nuint _computeSize;
    private bool _dynamic;

    private readonly nint _tokens;
    private readonly nint _positions;
    private readonly nint _mask;
    private readonly nint _labels;
    private readonly nint _targetMask;
    private readonly nint _lossScale;
    private readonly nint _logitsForward;

    public LlamaTrainingGraph(
        LlamaShape shape,
        IReadOnlyList<ModelTensor> weights,
        bool trainBaseWeights,
        IReadOnlyList<LoraPair> loras,
        int sequenceLength,
        int rows,
        int threads,
        AdamWSettings adamW,
        bool forwardOnly = false,
        bool? dynamicGraphs = null)
    {
        shape.Validate();
        _shape = shape;
        _sequenceLength = sequenceLength;
        _rows = rows;
        var n = (long)sequenceLength * rows;

        _optimizerParams = (GgmlOptimizerParams*)NativeMemory.AllocZeroed((nuint)sizeof(GgmlOptimizerParams));
        *_optimizerParams = new GgmlOptimizerParams
        {
            AdamAlpha = 1e-3f,
            AdamBeta1 = adamW.Beta1,
            AdamBeta2 = adamW.Beta2,
            AdamEps = adamW.Epsilon,
            AdamWeightDecay = adamW.WeightDecay,
            SgdAlpha = 1e-3f,
            SgdWeightDecay = 0f,
        };

        try
        {
            var tensorCount = weights.Count + 2 * loras.Count + 16;
            _ctxStatic = Ggml.ggml_init(new GgmlInitParams { MemSize = Ggml.ggml_tensor_overhead() * (nuint)tensorCount, NoAlloc = 1 });
            if (_ctxStatic == 0)
            {
                throw new InvalidOperationException("ggml_init failed for the weight context.");
            }

            foreach (var weight in weights)
            {
                var t = NewTensor(_ctxStatic, weight.Shape);
                Ggml.SetName(t, weight.Name);
                if (trainBaseWeights)
                {
                    Ggml.ggml_set_param(t);
                    _trainableNames.Add(weight.Name);
                }

                _tensors[weight.Name] = t;
            }

            foreach (var lora in loras)
            {
                var a = NewTensor(_ctxStatic, lora.A.Shape);
                var b = NewTensor(_ctxStatic, lora.B.Shape);
                Ggml.SetName(a, lora.A.Name);
                Ggml.SetName(b, lora.B.Name);
                Ggml.ggml_set_param(a);
                Ggml.ggml_set_param(b);
                _tensors[lora.A.Name] = a;
                _tensors[lora.B.Name] = b;
                _trainableNames.Add(lora.A.Name);
                _trainableNames.Add(lora.B.Name);
                _lora[lora.BaseName] = (a, b, lora.Scale);
            }

            // Inputs live in the statically allocated context too: ggml_opt requires it for static graphs.
            _tokens = Input(Ggml.ggml_new_tensor_1d(_ctxStatic, GgmlTensorType.I32, n), "tokens");
            _positions = Input(Ggml.ggml_new_tensor_1d(_ctxStatic, GgmlTensorType.I32, n), "positions");
            _mask = Input(Ggml.ggml_new_tensor_4d(_ctxStatic, GgmlTensorType.F32, sequenceLength, sequenceLength, 1, rows), "attention_mask");
            _labels = Input(Ggml.ggml_new_tensor_2d(_ctxStatic, GgmlTensorType.F32, shape.VocabSize, n), "labels");
            _targetMask = Input(Ggml.ggml_new_tensor_2d(_ctxStatic, GgmlTensorType.F32, 1, n), "target_mask");
            _lossScale = Input(Ggml.ggml_new_tensor_1d(_ctxStatic, GgmlTensorType.F32, 1), "loss_scale");

            _backend = Ggml.ggml_backend_cpu_init();
            if (_backend == 0)
            {
                throw new InvalidOperationException("ggml_backend_cpu_init failed.");
            }

            Ggml.ggml_backend_cpu_set_n_threads(_backend, Math.Max(1, threads));

            _bufferStatic = Ggml.ggml_backend_alloc_ctx_tensors_from_buft(_ctxStatic, Ggml.ggml_backend_cpu_buffer_type());
            if (_bufferStatic == 0)
            {
                throw new InvalidOperationException("Could not allocate the weight buffer.");
            }

            foreach (var weight in weights)
            {
                Ggml.Upload<float>(_tensors[weight.Name], weight.Data);
            }

            foreach (var lora in loras)
            {
                Ggml.Upload<float>(_tensors[lora.A.Name], lora.A.Data);
                Ggml.Upload<float>(_tensors[lora.B.Name], lora.B.Data);
            }

            var computeSize = Ggml.ggml_tensor_overhead() * GraphCapacity + 4 * Ggml.ggml_graph_overhead_custom(GraphCapacity, 1);

            // Forward-only graph used to read logits (ggml_opt evaluates an internal copy of its graphs).
            _ctxForward = Ggml.ggml_init(new GgmlInitParams { MemSize = computeSize, NoAlloc = 1 });
            _logitsForward = BuildLogits(_ctxForward);
            Ggml.ggml_set_output(_logitsForward);
            _forwardGraph = Ggml.ggml_new_graph_custom(_ctxForward, GraphCapacity, 0);
            Ggml.ggml_build_forward_expand(_forwardGraph, _logitsForward);
            _schedForward = NewScheduler();

            if (forwardOnly)
            {
                return;
            }

            _computeSize = computeSize;
            _dynamic = dynamicGraphs ?? ForwardNodeCount > MaxStaticForwardNodes;
            _schedTrain = NewScheduler();
            var optParams = Ggml.ggml_opt_default_params(_schedTrain, GgmlOptLossType.Sum);
            optParams.GetOptPars = Ggml.ConstantOptimizerParamsCallback();
            optParams.GetOptParsUserData = (nint)_optimizerParams;
            if (!_dynamic)
            {
                // Static graphs: built once; ggml_opt adds backward + AdamW to them.
                _ctxTrain = Ggml.ggml_init(new GgmlInitParams { MemSize = computeSize, NoAlloc = 1 });
                optParams.CtxCompute = _ctxTrain;
                optParams.Inputs = _tokens;
                optParams.Outputs = BuildLoss(_ctxTrain);
            }

            _opt = Ggml.ggml_opt_init(optParams);
            _result = Ggml.ggml_opt_result_init();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Operations in the forward graph (a measure of how large ggml_opt's backward graph gets).</summary>
    public int ForwardNodeCount => Ggml.ggml_graph_n_nodes(_forwardGraph);

    public int SequenceLength => _sequenceLength;

    public int Rows => _rows;

    /// <summary>Names of the tensors the optimiser updates.</summary>
    public IReadOnlyList<string> TrainableNames => _trainableNames;

    /// <summary>One forward + backward + AdamW step; returns the mean loss over target tokens before the update.</summary>
    public float TrainStep(PackedBatch batch, float learningRate)
    {
        EnsureTrainable();
        _optimizerParams->AdamAlpha = learningRate;
        _optimizerParams->SgdAlpha = learningRate;
        Upload(batch);
        return Run(backward: true);
    }

    /// <summary>The mean loss over target tokens, without changing any weight.</summary>
    public float Evaluate(PackedBatch batch)
    {
        EnsureTrainable();
        Upload(batch);
        return Run(backward: false);
    }

    /// <summary>Logits for every position, <c>[position * vocab + token]</c>, positions row-major as in the batch.</summary>
    public float[] ComputeLogits(PackedBatch batch)
    {
        Upload(batch);
        Ggml.ggml_backend_sched_reset(_schedForward);
        if (Ggml.ggml_backend_sched_alloc_graph(_schedForward, _forwardGraph) == 0)
        {
            throw new InvalidOperationException("Could not allocate the forward graph.");
        }

        var status = Ggml.ggml_backend_sched_graph_compute(_schedForward, _forwardGraph);
        if (status != 0)
        {
            throw new InvalidOperationException($"Forward graph failed with status {status}.");
        }

        var logits = new float[Ggml.ElementCount(_logitsForward)];
        Ggml.Download<float>(_logitsForward, logits);
        return logits;
    }

    /// <summary>Current values of a weight or LoRA tensor.</summary>
    public float[] Read(string name)
    {
        var t = _tensors[name];
        var data = new float[Ggml.ElementCount(t)];
        Ggml.Download<float>(t, data);
        return data;
    }

    /// <summary>Overwrites a weight or LoRA tensor (used when resuming from a checkpoint).</summary>
    public void Write(string name, ReadOnlySpan<float> data) => Ggml.Upload(_tensors[name], data);

    /// <summary>Clears AdamW moments and restarts its bias correction (after weights were replaced on resume).</summary>
    public void ResetOptimizer()
    {
        EnsureTrainable();
        Ggml.ggml_opt_reset(_opt, 1);
    }

    public void Dispose()
    {
        if (_result != 0) { Ggml.ggml_opt_result_free(_result); _result = 0; }
        if (_opt != 0) { Ggml.ggml_opt_free(_opt); _opt = 0; }
        if (_schedTrain != 0) { Ggml.ggml_backend_sched_free(_schedTrain); _schedTrain = 0; }
        if (_schedForward != 0) { Ggml.ggml_backend_sched_free(_schedForward); _schedForward = 0; }
        if (_ctxTrain != 0) { Ggml.ggml_free(_ctxTrain); _ctxTrain = 0; }
        if (_ctxForward != 0) { Ggml.ggml_free(_ctxForward); _ctxForward = 0; }
        if (_bufferStatic != 0) { Ggml.ggml_backend_buffer_free(_bufferStatic); _bufferStatic = 0; }
        if (_ctxStatic != 0) { Ggml.ggml_free(_ctxStatic); _ctxStatic = 0; }
        if (_backend != 0) { Ggml.ggml_backend_free(_backend); _backend = 0; }
        if (_optimizerParams != null) { NativeMemory.Free(_optimizerParams); _optimizerParams = null; }
        GC.SuppressFinalize(this);
    }

    /// <summary>Whether the training graph is rebuilt every step (large models) instead of built once.</summary>
    public bool UsesDynamicGraphs => _dynamic;

    private float Run(bool backward)
    {
        Ggml.ggml_opt_result_reset(_result);
        if (!_dynamic)
        {
            Ggml.ggml_opt_alloc(_opt, backward ? (byte)1 : (byte)0);
            Ggml.ggml_opt_eval(_opt, _result);
            return ReadLoss();
        }

        var ctx = Ggml.ggml_init(new GgmlInitParams { MemSize = _computeSize, NoAlloc = 1 });
        try
        {
            var loss = BuildLoss(ctx);
            var graph = Ggml.ggml_new_graph_custom(ctx, GraphCapacity, 1);
            Ggml.ggml_build_forward_expand(graph, loss);
            Ggml.ggml_opt_prepare_alloc(_opt, ctx, graph, _tokens, loss);
            Ggml.ggml_opt_alloc(_opt, backward ? (byte)1 : (byte)0);
            if (backward)
            {
                // Rebuilt graphs accumulate gradients into persistent buffers; one step must see only its own.
                foreach (var name in _trainableNames)
                {
                    var accumulator = Ggml.ggml_opt_grad_acc(_opt, _tensors[name]);
                    if (accumulator != 0)
                    {
                        Ggml.ggml_backend_tensor_memset(accumulator, 0, 0, Ggml.ggml_nbytes(accumulator));
                    }
                }
            }

            Ggml.ggml_opt_eval(_opt, _result);
            return ReadLoss();
        }
        finally
        {
            Ggml.ggml_free(ctx);
        }
    }

    /// <summary>Logits -> masked cross entropy -> mean over target tokens, as one scalar.</summary>
    private nint BuildLoss(nint ctx)
    {
        var logits = BuildLogits(ctx);
        var masked = Ggml.ggml_mul(ctx, logits, _targetMask);
        var crossEntropy = Ggml.ggml_cross_entropy_loss(ctx, masked, _labels);
        var loss = Ggml.ggml_mul(ctx, crossEntropy, _lossScale);
        Ggml.SetName(loss, "loss");
        return loss;
    }

    private void EnsureTrainable()
    {
        if (_opt == 0)
        {
            throw new InvalidOperationException("This graph was built for the forward pass only.");
        }
    }

    private float ReadLoss()
    {
        double loss;
        Ggml.ggml_opt_result_loss(_result, &loss, null);
        return (float)loss;
    }

    private nint NewScheduler()
    {
        var backend = _backend;
        var sched = Ggml.ggml_backend_sched_new(&backend, null, 1, GraphCapacity, 0, 0);
        return sched != 0 ? sched : throw new InvalidOperationException("ggml_backend_sched_new failed.");
    }

    private static nint NewTensor(nint ctx, long[] shape) => shape.Length switch
    {
        1 => Ggml.ggml_new_tensor_1d(ctx, GgmlTensorType.F32, shape[0]),
        2 => Ggml.ggml_new_tensor_2d(ctx, GgmlTensorType.F32, shape[0], shape[1]),
        3 => Ggml.ggml_new_tensor_3d(ctx, GgmlTensorType.F32, shape[0], shape[1], shape[2]),
        4 => Ggml.ggml_new_tensor_4d(ctx, GgmlTensorType.F32, shape[0], shape[1], shape[2], shape[3]),
        _ => throw new NotSupportedException($"Tensors of rank {shape.Length} are not supported."),
    };

    private static nint Input(nint tensor, string name)
    {
        Ggml.SetName(tensor, name);
        Ggml.ggml_set_input(tensor);
        return tensor;
    }

    private nint Weight(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"The model has no tensor '{name}'.");

    /// <summary><c>W·x</c>, plus the scaled LoRA path when the weight has an adapter.</summary>
    private nint Linear(nint ctx, string weightName, nint x)
    {
        var y = Ggml.ggml_mul_mat(ctx, Weight(weightName), x);
        if (_lora.TryGetValue(weightName, out var lora))
        {
            var down = Ggml.ggml_mul_mat(ctx, lora.A, x);
            var up = Ggml.ggml_mul_mat(ctx, lora.B, down);
            y = Ggml.ggml_add(ctx, y, Ggml.ggml_scale(ctx, up, lora.Scale));
        }

        return y;
    }

    /// <summary>Repeats each KV head for its group of query heads (head h uses KV head h / group, as llama.cpp).</summary>
    private nint ExpandKvHeads(nint ctx, nint t)
    {
        var group = _shape.HeadCount / _shape.HeadCountKv;
        if (group == 1)
        {
            return t;
        }

        long d0 = Ggml.Ne(t, 0), d1 = Ggml.Ne(t, 1), d2 = Ggml.Ne(t, 2), d3 = Ggml.Ne(t, 3);
        // [d0, d1, Hkv, B] -> [d0*d1, 1, Hkv, B] -> repeat -> [d0*d1, group, Hkv, B] -> [d0, d1, H, B]:
        // the repeat axis sits just below the KV-head axis, so copies of one KV head become adjacent heads.
        var flat = Ggml.ggml_reshape_4d(ctx, t, d0 * d1, 1, d2, d3);
        var repeated = Ggml.ggml_repeat_4d(ctx, flat, d0 * d1, group, d2, d3);
        return Ggml.ggml_reshape_4d(ctx, repeated, d0, d1, d2 * group, d3);
    }

    private nint BuildLogits(nint ctx)
    {
        var s = _shape;
        long t = _sequenceLength, b = _rows, n = t * b;
        var headDim = s.HeadDim;
        var kqScale = 1.0f / MathF.Sqrt(headDim);

        var x = Ggml.ggml_get_rows(ctx, Weight("token_embd.weight"), _tokens); // [E, N]

        for (var layer = 0; layer < s.BlockCount; layer++)
        {
            var p = $"blk.{layer}.";
            var h = Ggml.ggml_mul(ctx, Ggml.ggml_rms_norm(ctx, x, s.RmsNormEps), Weight(p + "attn_norm.weight"));

            var q = Linear(ctx, p + "attn_q.weight", h); // [Dh*H, N]
            var k = Linear(ctx, p + "attn_k.weight", h); // [Dh*Hkv, N]
            var v = Linear(ctx, p + "attn_v.weight", h); // [Dh*Hkv, N]

            // RoPE per token (positions restart for each packed example), then split the batch rows.
            q = Rope(ctx, Ggml.ggml_reshape_3d(ctx, q, headDim, s.HeadCount, n));
            k = Rope(ctx, Ggml.ggml_reshape_3d(ctx, k, headDim, s.HeadCountKv, n));
            q = Ggml.ggml_cont(ctx, Ggml.ggml_permute(ctx, Ggml.ggml_reshape_4d(ctx, q, headDim, s.HeadCount, t, b), 0, 2, 1, 3)); // [Dh, T, H, B]
            k = Ggml.ggml_cont(ctx, Ggml.ggml_permute(ctx, Ggml.ggml_reshape_4d(ctx, k, headDim, s.HeadCountKv, t, b), 0, 2, 1, 3)); // [Dh, T, Hkv, B]
            v = Ggml.ggml_cont(ctx, Ggml.ggml_permute(ctx, Ggml.ggml_reshape_4d(ctx, v, headDim, s.HeadCountKv, t, b), 1, 2, 0, 3)); // [T, Dh, Hkv, B]
            k = ExpandKvHeads(ctx, k);
            v = ExpandKvHeads(ctx, v);

            var kq = Ggml.ggml_mul_mat(ctx, k, q); // [Tk, Tq, H, B]
            kq = Ggml.ggml_soft_max_ext(ctx, kq, _mask, kqScale, 0f);
            var kqv = Ggml.ggml_mul_mat(ctx, v, kq); // [Dh, Tq, H, B]
            var merged = Ggml.ggml_cont(ctx, Ggml.ggml_permute(ctx, kqv, 0, 2, 1, 3)); // [Dh, H, T, B]
            merged = Ggml.ggml_reshape_2d(ctx, merged, headDim * s.HeadCount, n);
            x = Ggml.ggml_add(ctx, x, Linear(ctx, p + "attn_output.weight", merged));

            var f = Ggml.ggml_mul(ctx, Ggml.ggml_rms_norm(ctx, x, s.RmsNormEps), Weight(p + "ffn_norm.weight"));
            var gate = Linear(ctx, p + "ffn_gate.weight", f);
            var up = Linear(ctx, p + "ffn_up.weight", f);
            x = Ggml.ggml_add(ctx, x, Linear(ctx, p + "ffn_down.weight", Ggml.ggml_swiglu_split(ctx, gate, up)));
        }

        var final = Ggml.ggml_mul(ctx, Ggml.ggml_rms_norm(ctx, x, s.RmsNormEps), Weight("output_norm.weight"));
        // Without output.weight llama.cpp ties the head to the token embeddings ({E, V} either way).
        var head = _tensors.ContainsKey("output.weight") ? "output.weight" : "token_embd.weight";
        return Linear(ctx, head, final); // [V, N]
    }

    private nint Rope(nint ctx, nint x) =>
        Ggml.ggml_rope_ext(ctx, x, _positions, 0, _shape.RopeDims, RopeModeNorm, _shape.ContextLength,
            _shape.RopeFreqBase, _shape.RopeFreqScale, 0f, 1f, 32f, 1f);

    private void Upload(PackedBatch batch)
    {
        if (batch.SequenceLength != _sequenceLength || batch.Rows != _rows)
        {
            throw new ArgumentException("The batch shape does not match the graph.", nameof(batch));
        }

        var n = _sequenceLength * _rows;
        var vocab = _shape.VocabSize;
        foreach (var token in batch.Tokens)
        {
            if ((uint)token >= (uint)vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), $"Token id {token} is outside the vocabulary (size {vocab}).");
            }
        }

        Ggml.Upload<int>(_tokens, batch.Tokens);
        Ggml.Upload<int>(_positions, batch.Positions);

        var mask = new float[_sequenceLength * _sequenceLength * _rows];
        for (var row = 0; row < _rows; row++)
        {
            var rowOffset = row * _sequenceLength;
            for (var query = 0; query < _sequenceLength; query++)
            {
                var line = mask.AsSpan((row * _sequenceLength + query) * _sequenceLength, _sequenceLength);
                var segment = batch.Segments[rowOffset + query];
                for (var key = 0; key < _sequenceLength; key++)
                {
                    var visible = key <= query && batch.Segments[rowOffset + key] == segment;
                    line[key] = visible ? 0f : float.NegativeInfinity;
                }
            }
        }

        Ggml.Upload<float>(_mask, mask);

        var labels = new float[(long)vocab * n];
        var targetMask = new float[n];
        var targets = 0;
        for (var i = 0; i < n; i++)
        {
            var target = batch.Targets[i];
            if (target < 0)
            {
                continue;
            }

            if (target >= vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), $"Token id {target} is outside the vocabulary (size {vocab}).");
            }

            labels[(long)i * vocab + target] = 1f;
            targetMask[i] = 1f;
            targets++;
        }

        Ggml.Upload<float>(_labels, labels);
        Ggml.Upload<float>(_targetMask, targetMask);
        // ggml's cross entropy averages over all rows; rescale to the mean over rows that have a target.
        Ggml.Upload<float>(_lossScale, [targets == 0 ? 0f : (float)n / targets]);
    }
}
