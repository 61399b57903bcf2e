using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Gguf;

public sealed class GgufRoundTripTests
{
    [Fact]
    public void Every_metadata_type_and_tensor_reads_back_identically()
    {
        var writer = new GgufWriter();
        writer.Set("general.alignment", GgufValue.UInt32(64))
            .Set("u8", GgufValue.UInt8(200))
            .Set("i8", GgufValue.Int8(-100))
            .Set("u16", GgufValue.UInt16(60000))
            .Set("i16", GgufValue.Int16(-30000))
            .Set("u32", GgufValue.UInt32(4_000_000_000))
            .Set("i32", GgufValue.Int32(-2_000_000_000))
            .Set("f32", GgufValue.Float32(3.25f))
            .Set("bool", GgufValue.Bool(true))
            .Set("string", GgufValue.String("héllo ✓"))
            .Set("u64", GgufValue.UInt64(ulong.MaxValue))
            .Set("i64", GgufValue.Int64(long.MinValue))
            .Set("f64", GgufValue.Float64(Math.PI))
            .Set("strings", GgufValue.StringArray(["a", "", "ü"]))
            .Set("ints", GgufValue.Int32Array([1, -2, 3]))
            .Set("bytes", GgufValue.Array(GgufArray.Of(new byte[] { 1, 2, 255 })))
            .Set("nested", GgufValue.Array(GgufArray.Of([GgufArray.Of(new[] { 1.5f }), GgufArray.Of(new[] { 2.5f, 3.5f })])));
        var random = new Random(3);
        var f32 = Enumerable.Range(0, 3 * 5).Select(_ => random.NextSingle()).ToArray();
        var f16 = Enumerable.Range(0, 4 * 2).Select(i => i * 0.5f).ToArray();
        var q8 = Enumerable.Range(0, 64).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        writer.AddTensor("odd.f32", [3, 5], f32);
        writer.AddTensor("half.f16", [4, 2], f16, GgmlType.F16);
        writer.AddTensor("quant.q8_0", [64], q8, GgmlType.Q8_0);
        var path = TestModels.NewPath("roundtrip");
        writer.Write(path);

        var file = GgufFile.Read(path);

        Assert.Equal(3u, file.Version);
        Assert.Equal(64u, file.Alignment);
        Assert.Equal(writer.Metadata.Keys, file.Metadata.Keys);
        foreach (var (key, value) in writer.Metadata)
        {
            Assert.Equal(value, file.Metadata[key]);
        }

        Assert.Equal(["odd.f32", "half.f16", "quant.q8_0"], file.Tensors.Select(t => t.Name));
        Assert.Equal([3L, 5L], file.GetTensor("odd.f32").Shape);
        Assert.Equal(f32, file.GetTensor("odd.f32").ToFloat32());
        Assert.Equal(f16, file.GetTensor("half.f16").ToFloat32());
        Assert.Equal(writer.Tensors[2].Data, file.GetTensor("quant.q8_0").Data);
        var dequantized = file.GetTensor("quant.q8_0").ToFloat32();
        Assert.All(q8.Zip(dequantized), p => Assert.InRange(p.Second - p.First, -0.01f, 0.01f));

        // Writing what was read gives the same bytes: nothing is lost or reordered.
        var copy = TestModels.NewPath("roundtrip-copy");
        file.Write(copy);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
    }

    [Fact]
    public void Tensor_data_offsets_honour_the_alignment()
    {
        var writer = new GgufWriter();
        writer.Set("general.alignment", GgufValue.UInt32(128));
        writer.AddTensor("a", [3], [1f, 2f, 3f]);
        writer.AddTensor("b", [1], [4f]);
        var path = TestModels.NewPath("aligned");
        writer.Write(path);

        var bytes = File.ReadAllBytes(path);
        // "b" starts 128 bytes after "a" (12 bytes of data, then padding); the data section itself starts aligned.
        var dataStart = bytes.Length - 128 - 128;
        Assert.Equal(0, dataStart % 128);
        Assert.Equal(1f, BitConverter.ToSingle(bytes, dataStart));
        Assert.Equal(4f, BitConverter.ToSingle(bytes, dataStart + 128));
        Assert.Equal([4f], GgufFile.Read(path).GetTensor("b").ToFloat32());
    }

    [Fact]
    public void Getters_accept_any_integer_width()
    {
        var metadata = new GgufMetadata()
            .Set("narrow", GgufValue.UInt8(7))
            .Set("wide", GgufValue.UInt64(7))
            .Set("float", GgufValue.Float64(0.5))
            .Set("ints", GgufValue.Array(GgufArray.Of(new short[] { 1, 2 })));

        Assert.Equal(7u, metadata.GetUInt32("narrow"));
        Assert.Equal(7, metadata.GetInt32("wide"));
        Assert.Equal(0.5f, metadata.GetFloat32("float"));
        Assert.Equal([1L, 2L], metadata.GetArray<long>("ints"));
        Assert.Throws<InvalidCastException>(() => metadata.GetString("narrow"));
    }

    [Fact]
    public void Reading_a_file_that_is_not_gguf_fails_clearly()
    {
        var path = TestModels.NewPath("garbage");
        File.WriteAllBytes(path, "this is not a model file"u8.ToArray());
        Assert.Throws<GgufFormatException>(() => GgufFile.Read(path));
        File.WriteAllBytes(path, "GGUF"u8.ToArray());
        Assert.Throws<GgufFormatException>(() => GgufFile.Read(path));
    }
}
