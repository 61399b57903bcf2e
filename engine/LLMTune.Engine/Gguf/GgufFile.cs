using System.Text;

namespace LLMTune.Engine.Gguf;

/// <summary>
/// A GGUF file: metadata in file order plus tensors. <see cref="Read(string)"/> parses the header and tensor
/// directory; tensor bytes are read from disk only when a tensor's data is used.
/// </summary>
public sealed class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian uint32
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    public GgufFile(GgufMetadata metadata, IReadOnlyList<GgufTensor> tensors, uint version = 3)
    {
        Metadata = metadata ?? throw new ArgumentNullException(nameof(metadata));
        Tensors = tensors ?? throw new ArgumentNullException(nameof(tensors));
        Version = version;
    }

    public uint Version { get; }

    public GgufMetadata Metadata { get; }

    public IReadOnlyList<GgufTensor> Tensors { get; }

    /// <summary>Alignment of the tensor data: <c>general.alignment</c> when present, else 32.</summary>
    public uint Alignment => Metadata.GetUInt32OrNull(AlignmentKey) ?? DefaultAlignment;

    /// <summary><c>general.architecture</c>, e.g. "llama", "qwen2"; null when absent.</summary>
    public string? Architecture => Metadata.GetStringOrDefault("general.architecture");

    public GgufTensor GetTensor(string name) =>
        Tensors.FirstOrDefault(t => t.Name == name) ?? throw new KeyNotFoundException($"GGUF file has no tensor '{name}'.");

    public GgufTensor? FindTensor(string name) => Tensors.FirstOrDefault(t => t.Name == name);

    public string GetString(string key) => Metadata.GetString(key);
    public uint GetUInt32(string key) => Metadata.GetUInt32(key);
    public int GetInt32(string key) => Metadata.GetInt32(key);
    public ulong GetUInt64(string key) => Metadata.GetUInt64(key);
    public long GetInt64(string key) => Metadata.GetInt64(key);
    public float GetFloat32(string key) => Metadata.GetFloat32(key);
    public bool GetBool(string key) => Metadata.GetBool(key);
    public T[] GetArray<T>(string key) => Metadata.GetArray<T>(key);

    public void Write(string path) => GgufWriter.Write(this, path);

    public static GgufFile Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            return Read(reader, path);
        }
        catch (EndOfStreamException)
        {
            throw new GgufFormatException($"'{path}' ends before its GGUF header does.");
        }
    }

    private static GgufFile Read(BinaryReader reader, string path)
    {
        if (reader.ReadUInt32() != Magic)
        {
            throw new GgufFormatException($"'{path}' is not a GGUF file (bad magic).");
        }

        var version = reader.ReadUInt32();
        if (version is not (2 or 3))
        {
            throw new GgufFormatException($"'{path}' is GGUF version {version}; versions 2 and 3 are supported.");
        }

        var tensorCount = reader.ReadUInt64();
        var metadataCount = reader.ReadUInt64();
        var fileLength = reader.BaseStream.Length;
        if (tensorCount > (ulong)fileLength || metadataCount > (ulong)fileLength)
        {
            throw new GgufFormatException($"'{path}' claims {tensorCount} tensors and {metadataCount} metadata entries, more than the file can hold.");
        }

        var metadata = new GgufMetadata();
        for (ulong i = 0; i < metadataCount; i++)
        {
            var key = ReadString(reader);
            var type = (GgufValueType)reader.ReadUInt32();
            metadata.Set(key, ReadValue(reader, type));
        }

        var infos = new List<(string Name, long[] Shape, GgmlType Type, ulong Offset)>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = ReadString(reader);
            var dims = reader.ReadUInt32();
            if (dims is 0 or > 4)
            {
                throw new GgufFormatException($"Tensor '{name}' has {dims} dimensions.");
            }

            var shape = new long[dims];
            for (var d = 0; d < dims; d++)
            {
                shape[d] = checked((long)reader.ReadUInt64());
            }

            var type = (GgmlType)reader.ReadUInt32();
            if (!GgmlTypeInfo.IsKnown(type))
            {
                throw new GgufFormatException($"Tensor '{name}' has unknown ggml type {(uint)type}.");
            }

            infos.Add((name, shape, type, reader.ReadUInt64()));
        }

        var alignment = metadata.GetUInt32OrNull(AlignmentKey) ?? DefaultAlignment;
        var dataStart = AlignUp(reader.BaseStream.Position, alignment);
        var tensors = new List<GgufTensor>(infos.Count);
        foreach (var (name, shape, type, offset) in infos)
        {
            var start = dataStart + checked((long)offset);
            var byteSize = GgmlTypeInfo.ByteSize(type, shape.Aggregate(1L, (a, b) => checked(a * b)));
            if (start + byteSize > fileLength)
            {
                throw new GgufFormatException($"Tensor '{name}' runs past the end of '{path}'.");
            }

            tensors.Add(new GgufTensor(name, shape, type, new Lazy<byte[]>(() => ReadBytes(path, start, byteSize))));
        }

        return new GgufFile(metadata, tensors, version);
    }

    internal static long AlignUp(long value, uint alignment) => (value + alignment - 1) / alignment * alignment;

    private static byte[] ReadBytes(string path, long start, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        stream.Position = start;
        var data = new byte[length];
        stream.ReadExactly(data);
        return data;
    }

    private static string ReadString(BinaryReader reader)
    {
        var length = reader.ReadUInt64();
        if (length > (ulong)(reader.BaseStream.Length - reader.BaseStream.Position))
        {
            throw new GgufFormatException($"A GGUF string claims {length} bytes, more than remain in the file.");
        }

        return Encoding.UTF8.GetString(reader.ReadBytes((int)length));
    }

    private static GgufValue ReadValue(BinaryReader reader, GgufValueType type) => type switch
    {
        GgufValueType.Array => GgufValue.Array(ReadArray(reader)),
        _ => GgufValue.FromObject(ReadScalar(reader, type)),
    };

    private static object ReadScalar(BinaryReader reader, GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => reader.ReadByte(),
        GgufValueType.Int8 => reader.ReadSByte(),
        GgufValueType.UInt16 => reader.ReadUInt16(),
        GgufValueType.Int16 => reader.ReadInt16(),
        GgufValueType.UInt32 => reader.ReadUInt32(),
        GgufValueType.Int32 => reader.ReadInt32(),
        GgufValueType.Float32 => reader.ReadSingle(),
        GgufValueType.Bool => reader.ReadByte() != 0,
        GgufValueType.String => ReadString(reader),
        GgufValueType.UInt64 => reader.ReadUInt64(),
        GgufValueType.Int64 => reader.ReadInt64(),
        GgufValueType.Float64 => reader.ReadDouble(),
        GgufValueType.Array => ReadArray(reader),
        _ => throw new GgufFormatException($"Unknown GGUF metadata type {(uint)type}."),
    };

    private static GgufArray ReadArray(BinaryReader reader)
    {
        var elementType = (GgufValueType)reader.ReadUInt32();
        var count = reader.ReadUInt64();
        if (count > (ulong)(reader.BaseStream.Length - reader.BaseStream.Position))
        {
            throw new GgufFormatException($"A GGUF array claims {count} items, more than remain in the file.");
        }

        var items = Array.CreateInstance(GgufArray.ClrTypeOf(elementType), (int)count);
        for (var i = 0; i < (int)count; i++)
        {
            items.SetValue(ReadScalar(reader, elementType), i);
        }

        return new GgufArray(elementType, items);
    }
}
