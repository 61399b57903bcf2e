using System.Runtime.InteropServices;

namespace LLMTune.Engine.Native;

/// <summary>ggml tensor element types used by the training graphs (numbers as in ggml.h).</summary>
internal enum GgmlTensorType
{
    F32 = 0,
    F16 = 1,
    I32 = 26,
}

/// <summary><c>ggml_opt_loss_type</c>.</summary>
internal enum GgmlOptLossType
{
    Mean = 0,
    Sum = 1,
    CrossEntropy = 2,
    MeanSquaredError = 3,
}

/// <summary><c>ggml_init_params</c> as laid out in the shipped binary (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GgmlInitParams
{
    public nuint MemSize;
    public nint MemBuffer;
    public byte NoAlloc; // C bool
}

/// <summary><c>ggml_opt_params</c> of ggml 0.18.0 (815a2a591): 72 bytes, no gradient-checkpoint field.</summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
internal struct GgmlOptParams
{
    [FieldOffset(0)] public nint BackendSched;
    [FieldOffset(8)] public nint CtxCompute;
    [FieldOffset(16)] public nint Inputs;
    [FieldOffset(24)] public nint Outputs;
    [FieldOffset(32)] public int LossType;
    [FieldOffset(36)] public int BuildType;
    [FieldOffset(40)] public int OptPeriod;
    [FieldOffset(48)] public nint GetOptPars;
    [FieldOffset(56)] public nint GetOptParsUserData;
    [FieldOffset(64)] public int Optimizer;
}

/// <summary><c>ggml_opt_optimizer_params</c> of this binary: 7 floats (AdamW has no gradient clipping here).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GgmlOptimizerParams
{
    public float AdamAlpha;
    public float AdamBeta1;
    public float AdamBeta2;
    public float AdamEps;
    public float AdamWeightDecay;
    public float SgdAlpha;
    public float SgdWeightDecay;
}

/// <summary>
/// P/Invoke declarations for the parts of ggml (libggml-base / libggml-cpu) the trainer uses.
/// Pointers cross as <see cref="nint"/>; C <c>bool</c> crosses as a byte.
/// </summary>
internal static unsafe class Ggml
{
    private const string Base = NativeLibraryResolver.GgmlBase;
    private const string Cpu = NativeLibraryResolver.GgmlCpu;

    // Byte offsets inside struct ggml_tensor in this binary (measured; see the notes in the engine README).
    private const int TensorTypeOffset = 0;
    private const int TensorNeOffset = 16;
    private const int TensorNbOffset = 48;
    private const int TensorDataOffset = 248;

    static Ggml() => NativeLibraryResolver.EnsureRegistered();

    /// <summary>Forces the resolver and the libraries to load (a cheap call that fails early if they cannot).</summary>
    internal static string Version() => Marshal.PtrToStringUTF8(ggml_version()) ?? string.Empty;

    internal static GgmlTensorType TypeOf(nint tensor) => (GgmlTensorType)(*(int*)(tensor + TensorTypeOffset));

    internal static long Ne(nint tensor, int dim) => ((long*)(tensor + TensorNeOffset))[dim];

    internal static ulong Nb(nint tensor, int dim) => ((ulong*)(tensor + TensorNbOffset))[dim];

    internal static nint DataPointer(nint tensor) => *(nint*)(tensor + TensorDataOffset);

    internal static long ElementCount(nint tensor) => Ne(tensor, 0) * Ne(tensor, 1) * Ne(tensor, 2) * Ne(tensor, 3);

    internal static nint SetName(nint tensor, string name)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes)
        {
            return ggml_set_name(tensor, p);
        }
    }

    internal static void Upload<T>(nint tensor, ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = (nuint)(values.Length * sizeof(T));
        if (bytes != ggml_nbytes(tensor))
        {
            throw new ArgumentException($"Tensor holds {ggml_nbytes(tensor)} bytes but {bytes} were given.", nameof(values));
        }

        fixed (T* p = values)
        {
            ggml_backend_tensor_set(tensor, p, 0, bytes);
        }
    }

    internal static void Download<T>(nint tensor, Span<T> values) where T : unmanaged
    {
        var bytes = (nuint)(values.Length * sizeof(T));
        if (bytes != ggml_nbytes(tensor))
        {
            throw new ArgumentException($"Tensor holds {ggml_nbytes(tensor)} bytes but room for {bytes} was given.", nameof(values));
        }

        fixed (T* p = values)
        {
            ggml_backend_tensor_get(tensor, p, 0, bytes);
        }
    }

    // ---- core ----
    [DllImport(Base)] internal static extern nint ggml_version();
    [DllImport(Base)] internal static extern nint ggml_init(GgmlInitParams parameters);
    [DllImport(Base)] internal static extern void ggml_free(nint ctx);
    [DllImport(Base)] internal static extern nuint ggml_tensor_overhead();
    [DllImport(Base)] internal static extern nuint ggml_graph_overhead_custom(nuint size, byte grads);
    [DllImport(Base)] internal static extern nuint ggml_nbytes(nint tensor);
    [DllImport(Base)] internal static extern nint ggml_new_tensor_1d(nint ctx, GgmlTensorType type, long ne0);
    [DllImport(Base)] internal static extern nint ggml_new_tensor_2d(nint ctx, GgmlTensorType type, long ne0, long ne1);
    [DllImport(Base)] internal static extern nint ggml_new_tensor_3d(nint ctx, GgmlTensorType type, long ne0, long ne1, long ne2);
    [DllImport(Base)] internal static extern nint ggml_new_tensor_4d(nint ctx, GgmlTensorType type, long ne0, long ne1, long ne2, long ne3);
    [DllImport(Base)] private static extern nint ggml_set_name(nint tensor, byte* name);
    [DllImport(Base)] internal static extern void ggml_set_param(nint tensor);
    [DllImport(Base)] internal static extern void ggml_set_input(nint tensor);
    [DllImport(Base)] internal static extern void ggml_set_output(nint tensor);

    // ---- operations (all with a backward pass in this build unless noted) ----
    [DllImport(Base)] internal static extern nint ggml_get_rows(nint ctx, nint a, nint rows);
    [DllImport(Base)] internal static extern nint ggml_rms_norm(nint ctx, nint a, float eps);
    [DllImport(Base)] internal static extern nint ggml_mul(nint ctx, nint a, nint b);
    [DllImport(Base)] internal static extern nint ggml_add(nint ctx, nint a, nint b);
    [DllImport(Base)] internal static extern nint ggml_scale(nint ctx, nint a, float s);
    [DllImport(Base)] internal static extern nint ggml_mul_mat(nint ctx, nint a, nint b);
    [DllImport(Base)] internal static extern nint ggml_reshape_2d(nint ctx, nint a, long ne0, long ne1);
    [DllImport(Base)] internal static extern nint ggml_reshape_3d(nint ctx, nint a, long ne0, long ne1, long ne2);
    [DllImport(Base)] internal static extern nint ggml_reshape_4d(nint ctx, nint a, long ne0, long ne1, long ne2, long ne3);
    [DllImport(Base)] internal static extern nint ggml_permute(nint ctx, nint a, int axis0, int axis1, int axis2, int axis3);
    [DllImport(Base)] internal static extern nint ggml_cont(nint ctx, nint a);
    [DllImport(Base)] internal static extern nint ggml_repeat_4d(nint ctx, nint a, long ne0, long ne1, long ne2, long ne3);
    [DllImport(Base)] internal static extern nint ggml_swiglu_split(nint ctx, nint a, nint b);
    [DllImport(Base)]
    internal static extern nint ggml_rope_ext(nint ctx, nint a, nint positions, nint freqFactors, int nDims, int mode, int nCtxOrig,
        float freqBase, float freqScale, float extFactor, float attnFactor, float betaFast, float betaSlow);
    [DllImport(Base)] internal static extern nint ggml_soft_max_ext(nint ctx, nint a, nint mask, float scale, float maxBias);
    [DllImport(Base)] internal static extern nint ggml_cross_entropy_loss(nint ctx, nint logits, nint labels);

    // ---- graphs ----
    [DllImport(Base)] internal static extern nint ggml_new_graph_custom(nint ctx, nuint size, byte grads);
    [DllImport(Base)] internal static extern void ggml_build_forward_expand(nint graph, nint tensor);
    [DllImport(Base)] internal static extern int ggml_graph_n_nodes(nint graph);

    // ---- backend ----
    [DllImport(Cpu)] internal static extern nint ggml_backend_cpu_init();
    [DllImport(Cpu)] internal static extern void ggml_backend_cpu_set_n_threads(nint backend, int threads);
    [DllImport(Base)] internal static extern void ggml_backend_free(nint backend);
    [DllImport(Base)] internal static extern nint ggml_backend_cpu_buffer_type();
    [DllImport(Base)] internal static extern nint ggml_backend_alloc_ctx_tensors_from_buft(nint ctx, nint bufferType);
    [DllImport(Base)] internal static extern void ggml_backend_buffer_free(nint buffer);
    [DllImport(Base)] internal static extern void ggml_backend_tensor_set(nint tensor, void* data, nuint offset, nuint size);
    [DllImport(Base)] internal static extern void ggml_backend_tensor_get(nint tensor, void* data, nuint offset, nuint size);
    [DllImport(Base)] internal static extern nint ggml_backend_sched_new(nint* backends, nint* bufferTypes, int count, nuint graphSize, byte parallel, byte opOffload);
    [DllImport(Base)] internal static extern void ggml_backend_sched_free(nint sched);
    [DllImport(Base)] internal static extern void ggml_backend_sched_reset(nint sched);
    [DllImport(Base)] internal static extern byte ggml_backend_sched_alloc_graph(nint sched, nint graph);
    [DllImport(Base)] internal static extern int ggml_backend_sched_graph_compute(nint sched, nint graph);

    // ---- ggml_opt ----
    [DllImport(Base)] internal static extern GgmlOptParams ggml_opt_default_params(nint sched, GgmlOptLossType lossType);
    [DllImport(Base)] internal static extern nint ggml_opt_init(GgmlOptParams parameters);
    [DllImport(Base)] internal static extern void ggml_opt_free(nint opt);
    [DllImport(Base)] internal static extern void ggml_opt_reset(nint opt, byte optimizer);
    [DllImport(Base)] internal static extern void ggml_opt_alloc(nint opt, byte backward);
    [DllImport(Base)] internal static extern void ggml_opt_prepare_alloc(nint opt, nint ctxCompute, nint graph, nint inputs, nint outputs);
    [DllImport(Base)] internal static extern nint ggml_opt_grad_acc(nint opt, nint node);
    [DllImport(Base)] internal static extern void ggml_backend_tensor_memset(nint tensor, byte value, nuint offset, nuint size);
    [DllImport(Base)] internal static extern void ggml_opt_eval(nint opt, nint result);
    [DllImport(Base)] internal static extern nint ggml_opt_result_init();
    [DllImport(Base)] internal static extern void ggml_opt_result_free(nint result);
    [DllImport(Base)] internal static extern void ggml_opt_result_reset(nint result);
    [DllImport(Base)] internal static extern void ggml_opt_result_loss(nint result, double* loss, double* uncertainty);

    /// <summary>Address of <c>ggml_opt_get_constant_optimizer_params</c>, passed to ggml_opt as the schedule callback.</summary>
    internal static nint ConstantOptimizerParamsCallback() =>
        NativeLibraryResolver.GetExport(Base, "ggml_opt_get_constant_optimizer_params");
}
