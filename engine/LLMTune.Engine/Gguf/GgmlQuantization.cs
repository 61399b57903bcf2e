using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace LLMTune.Engine.Gguf;

/// <summary>Conversions between floats and ggml's block formats (block layouts as in ggml-common.h).</summary>
public static class GgmlQuantization
{
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> data, int count)
    {
        var expected = GgmlTypeInfo.ByteSize(type, count);
        if (data.Length != expected)
        {
            throw new ArgumentException($"{count} {type} values take {expected} bytes, got {data.Length}.", nameof(data));
        }

        var output = new float[count];
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(data).CopyTo(output);
                break;
            case GgmlType.F16:
                for (var i = 0; i < count; i++)
                {
                    output[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(data[(i * 2)..]);
                }

                break;
            case GgmlType.BF16:
                for (var i = 0; i < count; i++)
                {
                    output[i] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(data[(i * 2)..]) << 16);
                }

                break;
            case GgmlType.Q8_0:
                ForEachBlock(data, 34, output, 32, static (block, y) =>
                {
                    var d = Half(block);
                    for (var j = 0; j < 32; j++)
                    {
                        y[j] = d * (sbyte)block[2 + j];
                    }
                });
                break;
            case GgmlType.Q4_0:
                ForEachBlock(data, 18, output, 32, static (block, y) =>
                {
                    var d = Half(block);
                    for (var j = 0; j < 16; j++)
                    {
                        y[j] = d * ((block[2 + j] & 0x0F) - 8);
                        y[j + 16] = d * ((block[2 + j] >> 4) - 8);
                    }
                });
                break;
            case GgmlType.Q4_1:
                ForEachBlock(data, 20, output, 32, static (block, y) =>
                {
                    float d = Half(block), m = Half(block[2..]);
                    for (var j = 0; j < 16; j++)
                    {
                        y[j] = d * (block[4 + j] & 0x0F) + m;
                        y[j + 16] = d * (block[4 + j] >> 4) + m;
                    }
                });
                break;
            case GgmlType.Q5_0:
                ForEachBlock(data, 22, output, 32, static (block, y) =>
                {
                    var d = Half(block);
                    var qh = BinaryPrimitives.ReadUInt32LittleEndian(block[2..]);
                    for (var j = 0; j < 16; j++)
                    {
                        var high0 = (int)((qh >> j) << 4) & 0x10;
                        var high1 = (int)(qh >> (j + 12)) & 0x10;
                        y[j] = d * (((block[6 + j] & 0x0F) | high0) - 16);
                        y[j + 16] = d * (((block[6 + j] >> 4) | high1) - 16);
                    }
                });
                break;
            case GgmlType.Q5_1:
                ForEachBlock(data, 24, output, 32, static (block, y) =>
                {
                    float d = Half(block), m = Half(block[2..]);
                    var qh = BinaryPrimitives.ReadUInt32LittleEndian(block[4..]);
                    for (var j = 0; j < 16; j++)
                    {
                        var high0 = (int)((qh >> j) << 4) & 0x10;
                        var high1 = (int)(qh >> (j + 12)) & 0x10;
                        y[j] = d * ((block[8 + j] & 0x0F) | high0) + m;
                        y[j + 16] = d * ((block[8 + j] >> 4) | high1) + m;
                    }
                });
                break;
            case GgmlType.Q4_K:
                ForEachBlock(data, 144, output, 256, DequantizeQ4KBlock);
                break;
            case GgmlType.Q6_K:
                ForEachBlock(data, 210, output, 256, DequantizeQ6KBlock);
                break;
            default:
                throw new NotSupportedException($"Dequantizing {type} is not supported.");
        }

        return output;
    }

    /// <summary>Q8_0: per block of 32, scale d = max|x| / 127 stored as F16, values round(x / d) as int8.</summary>
    public static byte[] QuantizeQ8_0(ReadOnlySpan<float> values)
    {
        if (values.Length % 32 != 0)
        {
            throw new ArgumentException("Q8_0 needs a multiple of 32 values.", nameof(values));
        }

        var data = new byte[values.Length / 32 * 34];
        for (var b = 0; b < values.Length / 32; b++)
        {
            var x = values.Slice(b * 32, 32);
            var amax = 0f;
            foreach (var v in x)
            {
                amax = Math.Max(amax, Math.Abs(v));
            }

            var d = amax / 127f;
            var inverse = d == 0 ? 0 : 1 / d;
            var block = data.AsSpan(b * 34, 34);
            BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
            for (var j = 0; j < 32; j++)
            {
                block[2 + j] = (byte)(sbyte)Math.Round(x[j] * inverse, MidpointRounding.AwayFromZero);
            }
        }

        return data;
    }

    private delegate void BlockDecoder(ReadOnlySpan<byte> block, Span<float> output);

    private static void ForEachBlock(ReadOnlySpan<byte> data, int blockBytes, float[] output, int blockSize, BlockDecoder decode)
    {
        for (var b = 0; b < output.Length / blockSize; b++)
        {
            decode(data.Slice(b * blockBytes, blockBytes), output.AsSpan(b * blockSize, blockSize));
        }
    }

    private static float Half(ReadOnlySpan<byte> bytes) => (float)BinaryPrimitives.ReadHalfLittleEndian(bytes);

    // Q4_K: d, dmin (F16), 12 bytes packing eight 6-bit scales and mins, then 128 bytes of 4-bit values.
    private static void DequantizeQ4KBlock(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half(block), dmin = Half(block[2..]);
        var scales = block.Slice(4, 12);
        var q = block.Slice(16, 128);
        for (int chunk = 0, scaleIndex = 0; chunk < 4; chunk++, scaleIndex += 2)
        {
            var (sc1, m1) = ScaleMinK4(scaleIndex, scales);
            var (sc2, m2) = ScaleMinK4(scaleIndex + 1, scales);
            var qs = q.Slice(chunk * 32, 32);
            var outChunk = y.Slice(chunk * 64, 64);
            for (var l = 0; l < 32; l++)
            {
                outChunk[l] = d * sc1 * (qs[l] & 0x0F) - dmin * m1;
                outChunk[l + 32] = d * sc2 * (qs[l] >> 4) - dmin * m2;
            }
        }
    }

    private static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // Q6_K: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, d (F16).
    private static void DequantizeQ6KBlock(ReadOnlySpan<byte> block, Span<float> y)
    {
        var d = Half(block[208..]);
        for (var half = 0; half < 2; half++)
        {
            var ql = block.Slice(half * 64, 64);
            var qh = block.Slice(128 + half * 32, 32);
            var sc = block.Slice(192 + half * 8, 8);
            var outHalf = y.Slice(half * 128, 128);
            for (var l = 0; l < 32; l++)
            {
                var scaleIndex = l / 16;
                var q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                var q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                var q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                var q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                outHalf[l] = d * (sbyte)sc[scaleIndex] * q1;
                outHalf[l + 32] = d * (sbyte)sc[scaleIndex + 2] * q2;
                outHalf[l + 64] = d * (sbyte)sc[scaleIndex + 4] * q3;
                outHalf[l + 96] = d * (sbyte)sc[scaleIndex + 6] * q4;
            }
        }
    }
}
