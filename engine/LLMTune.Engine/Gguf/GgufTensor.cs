using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace LLMTune.Engine.Gguf;

/// <summary>
/// One tensor of a GGUF file. <see cref="Shape"/> is in ggml order: <c>Shape[0]</c> (ne0) is the innermost,
/// contiguous dimension, so a llama weight matrix is <c>{input, output}</c>.
/// Data read from a file is loaded on first use, so reading a large model's metadata stays cheap.
/// </summary>
public sealed class GgufTensor
{
    private readonly Lazy<byte[]> _data;

    public GgufTensor(string name, long[] shape, GgmlType type, byte[] data)
        : this(name, shape, type, new Lazy<byte[]>(data ?? throw new ArgumentNullException(nameof(data))))
    {
        if (data.LongLength != ByteSize)
        {
            throw new ArgumentException($"Tensor '{name}' of {type} {FormatShape(shape)} needs {ByteSize} bytes, got {data.LongLength}.", nameof(data));
        }
    }

    internal GgufTensor(string name, long[] shape, GgmlType type, Lazy<byte[]> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length is < 1 or > 4 || shape.Any(d => d <= 0))
        {
            throw new ArgumentException($"Tensor '{name}' has an invalid shape {FormatShape(shape)}.", nameof(shape));
        }

        Name = name;
        Shape = (long[])shape.Clone();
        Type = type;
        ElementCount = shape.Aggregate(1L, (a, b) => checked(a * b));
        if (shape[0] % GgmlTypeInfo.GetLayout(type).BlockSize != 0)
        {
            throw new ArgumentException($"Tensor '{name}': ne0 = {shape[0]} is not a multiple of the {type} block size.", nameof(shape));
        }

        ByteSize = GgmlTypeInfo.ByteSize(type, ElementCount);
        _data = data;
    }

    public string Name { get; }

    /// <summary>Dimensions in ggml order (ne0 first, the contiguous one).</summary>
    public long[] Shape { get; }

    public GgmlType Type { get; }

    public long ElementCount { get; }

    public long ByteSize { get; }

    /// <summary>The raw bytes exactly as stored in the file (loaded on first access for tensors read from disk).</summary>
    public byte[] Data => _data.Value;

    /// <summary>Makes an F32 (or F16/BF16/Q8_0, converted from the floats) tensor; <paramref name="values"/> are in ggml order.</summary>
    public static GgufTensor FromFloat32(string name, long[] shape, ReadOnlySpan<float> values, GgmlType storeAs = GgmlType.F32)
    {
        var count = shape.Aggregate(1L, (a, b) => checked(a * b));
        if (values.Length != count)
        {
            throw new ArgumentException($"Tensor '{name}' {FormatShape(shape)} needs {count} values, got {values.Length}.", nameof(values));
        }

        byte[] data = storeAs switch
        {
            GgmlType.F32 => MemoryMarshal.AsBytes(values).ToArray(),
            GgmlType.F16 => EncodeF16(values),
            GgmlType.BF16 => EncodeBF16(values),
            GgmlType.Q8_0 => GgmlQuantization.QuantizeQ8_0(values),
            _ => throw new NotSupportedException($"Writing {storeAs} tensors from floats is not supported (F32, F16, BF16, Q8_0 are)."),
        };
        return new GgufTensor(name, shape, storeAs, data);
    }

    /// <summary>
    /// The values as floats in ggml order. Supports F32, F16, BF16 and the Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K
    /// quantizations (enough to dequantize the common quantized base models).
    /// </summary>
    public float[] ToFloat32() => GgmlQuantization.Dequantize(Type, Data, checked((int)ElementCount));

    public override string ToString() => $"{Name} {Type} {FormatShape(Shape)}";

    internal static string FormatShape(long[] shape) => "{" + string.Join(", ", shape) + "}";

    private static byte[] EncodeF16(ReadOnlySpan<float> values)
    {
        var data = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(i * 2), (Half)values[i]);
        }

        return data;
    }

    private static byte[] EncodeBF16(ReadOnlySpan<float> values)
    {
        var data = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            // Round to nearest even on the dropped 16 bits, as ggml's fp32→bf16 does.
            var bits = BitConverter.SingleToUInt32Bits(values[i]);
            var rounded = float.IsNaN(values[i]) ? (bits >> 16) | 64 : (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16;
            BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(i * 2), (ushort)rounded);
        }

        return data;
    }
}
