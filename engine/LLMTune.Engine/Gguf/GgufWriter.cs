using System.Text;

namespace LLMTune.Engine.Gguf;

/// <summary>
/// Writes GGUF version 3 files: every metadata type, tensors of any type whose bytes are given
/// (F32/F16/BF16/Q8_0 from floats via <see cref="GgufTensor.FromFloat32"/>), data aligned to
/// <c>general.alignment</c> (32 by default).
/// </summary>
public sealed class GgufWriter
{
    private readonly List<GgufTensor> _tensors = [];

    public GgufMetadata Metadata { get; } = new();

    public IReadOnlyList<GgufTensor> Tensors => _tensors;

    public GgufWriter Set(string key, GgufValue value)
    {
        Metadata.Set(key, value);
        return this;
    }

    public GgufWriter AddTensor(GgufTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_tensors.Any(t => t.Name == tensor.Name))
        {
            throw new ArgumentException($"Tensor '{tensor.Name}' was already added.", nameof(tensor));
        }

        _tensors.Add(tensor);
        return this;
    }

    public GgufWriter AddTensor(string name, long[] shape, ReadOnlySpan<float> values, GgmlType storeAs = GgmlType.F32) =>
        AddTensor(GgufTensor.FromFloat32(name, shape, values, storeAs));

    public GgufFile ToFile() => new(Metadata, _tensors.ToList());

    /// <summary>Writes to a temporary file beside <paramref name="path"/> and renames it, so readers never see half a file.</summary>
    public void Write(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Write(stream);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public void Write(Stream stream) => WriteTo(stream, Metadata, _tensors);

    public static void Write(GgufFile file, string path)
    {
        var writer = new GgufWriter();
        foreach (var (key, value) in file.Metadata)
        {
            writer.Set(key, value);
        }

        foreach (var tensor in file.Tensors)
        {
            writer.AddTensor(tensor);
        }

        writer.Write(path);
    }

    private static void WriteTo(Stream stream, GgufMetadata metadata, IReadOnlyList<GgufTensor> tensors)
    {
        var alignment = metadata.GetUInt32OrNull(GgufFile.AlignmentKey) ?? GgufFile.DefaultAlignment;
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new InvalidOperationException($"general.alignment must be a power of two, not {alignment}.");
        }

        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(GgufFile.Magic);
        writer.Write(3u);
        writer.Write((ulong)tensors.Count);
        writer.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(writer, key);
            writer.Write((uint)value.Type);
            WriteValue(writer, value.Type, value.Value);
        }

        long offset = 0;
        var offsets = new long[tensors.Count];
        for (var i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            WriteString(writer, tensor.Name);
            writer.Write((uint)tensor.Shape.Length);
            foreach (var dimension in tensor.Shape)
            {
                writer.Write((ulong)dimension);
            }

            writer.Write((uint)tensor.Type);
            writer.Write((ulong)offset);
            offsets[i] = offset;
            offset = GgufFile.AlignUp(offset + tensor.ByteSize, alignment);
        }

        writer.Flush();
        Pad(stream, alignment);
        var dataStart = stream.Position;
        for (var i = 0; i < tensors.Count; i++)
        {
            stream.Write(tensors[i].Data);
            Pad(stream, alignment, dataStart);
        }
    }

    private static void Pad(Stream stream, uint alignment, long origin = 0)
    {
        var relative = stream.Position - origin;
        var padding = GgufFile.AlignUp(relative, alignment) - relative;
        for (var i = 0; i < padding; i++)
        {
            stream.WriteByte(0);
        }
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteValue(BinaryWriter writer, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: writer.Write((byte)value); break;
            case GgufValueType.Int8: writer.Write((sbyte)value); break;
            case GgufValueType.UInt16: writer.Write((ushort)value); break;
            case GgufValueType.Int16: writer.Write((short)value); break;
            case GgufValueType.UInt32: writer.Write((uint)value); break;
            case GgufValueType.Int32: writer.Write((int)value); break;
            case GgufValueType.Float32: writer.Write((float)value); break;
            case GgufValueType.Bool: writer.Write((byte)((bool)value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(writer, (string)value); break;
            case GgufValueType.UInt64: writer.Write((ulong)value); break;
            case GgufValueType.Int64: writer.Write((long)value); break;
            case GgufValueType.Float64: writer.Write((double)value); break;
            case GgufValueType.Array:
                var array = (GgufArray)value;
                writer.Write((uint)array.ElementType);
                writer.Write((ulong)array.Count);
                foreach (var item in array.Items)
                {
                    WriteValue(writer, array.ElementType, item!);
                }

                break;
            default:
                throw new InvalidOperationException($"Unknown GGUF value type {type}.");
        }
    }
}
