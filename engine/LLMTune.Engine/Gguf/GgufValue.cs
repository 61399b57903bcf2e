using System.Globalization;

namespace LLMTune.Engine.Gguf;

/// <summary>GGUF metadata value types, numbered as in the GGUF specification.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// A typed GGUF metadata value. <see cref="Value"/> holds the matching .NET type
/// (byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double) or a <see cref="GgufArray"/>.
/// </summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    private GgufValue(GgufValueType type, object value)
    {
        Type = type;
        Value = value;
    }

    public GgufValueType Type { get; }

    public object Value { get; }

    public static GgufValue UInt8(byte value) => new(GgufValueType.UInt8, value);
    public static GgufValue Int8(sbyte value) => new(GgufValueType.Int8, value);
    public static GgufValue UInt16(ushort value) => new(GgufValueType.UInt16, value);
    public static GgufValue Int16(short value) => new(GgufValueType.Int16, value);
    public static GgufValue UInt32(uint value) => new(GgufValueType.UInt32, value);
    public static GgufValue Int32(int value) => new(GgufValueType.Int32, value);
    public static GgufValue Float32(float value) => new(GgufValueType.Float32, value);
    public static GgufValue Bool(bool value) => new(GgufValueType.Bool, value);
    public static GgufValue String(string value) => new(GgufValueType.String, value ?? throw new ArgumentNullException(nameof(value)));
    public static GgufValue UInt64(ulong value) => new(GgufValueType.UInt64, value);
    public static GgufValue Int64(long value) => new(GgufValueType.Int64, value);
    public static GgufValue Float64(double value) => new(GgufValueType.Float64, value);
    public static GgufValue Array(GgufArray value) => new(GgufValueType.Array, value ?? throw new ArgumentNullException(nameof(value)));

    public static GgufValue StringArray(IEnumerable<string> items) => Array(GgufArray.Of(items.ToArray()));
    public static GgufValue Int32Array(IEnumerable<int> items) => Array(GgufArray.Of(items.ToArray()));
    public static GgufValue Float32Array(IEnumerable<float> items) => Array(GgufArray.Of(items.ToArray()));

    /// <summary>Wraps a scalar of one of the supported .NET types (or a <see cref="GgufArray"/>).</summary>
    public static GgufValue FromObject(object value) => value switch
    {
        byte v => UInt8(v),
        sbyte v => Int8(v),
        ushort v => UInt16(v),
        short v => Int16(v),
        uint v => UInt32(v),
        int v => Int32(v),
        float v => Float32(v),
        bool v => Bool(v),
        string v => String(v),
        ulong v => UInt64(v),
        long v => Int64(v),
        double v => Float64(v),
        GgufArray v => Array(v),
        GgufValue v => v,
        _ => throw new ArgumentException($"{value?.GetType().Name ?? "null"} is not a GGUF metadata type.", nameof(value)),
    };

    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>The value as a signed 64-bit integer, whatever integer width was stored.</summary>
    public long AsInt64() => Type switch
    {
        GgufValueType.UInt64 => checked((long)(ulong)Value),
        _ when IsInteger => Convert.ToInt64(Value, CultureInfo.InvariantCulture),
        GgufValueType.Bool => (bool)Value ? 1 : 0,
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not an integer."),
    };

    /// <summary>The value as a double, for any numeric type.</summary>
    public double AsDouble() => Type switch
    {
        GgufValueType.Float32 => (float)Value,
        GgufValueType.Float64 => (double)Value,
        GgufValueType.UInt64 => (ulong)Value,
        _ when IsInteger => AsInt64(),
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not numeric."),
    };

    public bool Equals(GgufValue? other) =>
        other is not null && Type == other.Type && (Type == GgufValueType.Array ? ((GgufArray)Value).Equals((GgufArray)other.Value) : Value.Equals(other.Value));

    public override bool Equals(object? obj) => Equals(obj as GgufValue);

    public override int GetHashCode() => HashCode.Combine(Type, Value);

    public override string ToString() => Type == GgufValueType.Array ? Value.ToString()! : $"{Type}:{Value}";
}

/// <summary>
/// A GGUF array: one element type and a typed .NET array of items
/// (e.g. <c>string[]</c>, <c>int[]</c>, <c>float[]</c>; <c>GgufArray[]</c> for nested arrays).
/// </summary>
public sealed class GgufArray : IEquatable<GgufArray>
{
    public GgufArray(GgufValueType elementType, System.Array items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var expected = ClrTypeOf(elementType);
        if (items.GetType().GetElementType() != expected)
        {
            throw new ArgumentException($"A GGUF {elementType} array needs a {expected.Name}[], not {items.GetType().Name}.", nameof(items));
        }

        ElementType = elementType;
        Items = items;
    }

    public GgufValueType ElementType { get; }

    public System.Array Items { get; }

    public int Count => Items.Length;

    public static GgufArray Of(byte[] items) => new(GgufValueType.UInt8, items);
    public static GgufArray Of(sbyte[] items) => new(GgufValueType.Int8, items);
    public static GgufArray Of(ushort[] items) => new(GgufValueType.UInt16, items);
    public static GgufArray Of(short[] items) => new(GgufValueType.Int16, items);
    public static GgufArray Of(uint[] items) => new(GgufValueType.UInt32, items);
    public static GgufArray Of(int[] items) => new(GgufValueType.Int32, items);
    public static GgufArray Of(float[] items) => new(GgufValueType.Float32, items);
    public static GgufArray Of(bool[] items) => new(GgufValueType.Bool, items);
    public static GgufArray Of(string[] items) => new(GgufValueType.String, items);
    public static GgufArray Of(ulong[] items) => new(GgufValueType.UInt64, items);
    public static GgufArray Of(long[] items) => new(GgufValueType.Int64, items);
    public static GgufArray Of(double[] items) => new(GgufValueType.Float64, items);
    public static GgufArray Of(GgufArray[] items) => new(GgufValueType.Array, items);

    /// <summary>The .NET element type used for each GGUF element type.</summary>
    public static Type ClrTypeOf(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        GgufValueType.Array => typeof(GgufArray),
        _ => throw new NotSupportedException($"Unknown GGUF value type {(uint)type}."),
    };

    /// <summary>
    /// The items converted to <typeparamref name="T"/>. Numeric element types convert to any numeric T
    /// (checked, so a value that does not fit throws), which makes callers tolerant of the width a writer chose.
    /// </summary>
    public T[] ToArray<T>()
    {
        if (Items is T[] same)
        {
            return (T[])same.Clone();
        }

        var result = new T[Items.Length];
        for (var i = 0; i < result.Length; i++)
        {
            var item = Items.GetValue(i)!;
            result[i] = item is IConvertible && typeof(T) != typeof(string) && typeof(IConvertible).IsAssignableFrom(typeof(T))
                ? (T)Convert.ChangeType(item, typeof(T), CultureInfo.InvariantCulture)
                : throw new InvalidCastException($"GGUF {ElementType} array items cannot become {typeof(T).Name}.");
        }

        return result;
    }

    public bool Equals(GgufArray? other)
    {
        if (other is null || other.ElementType != ElementType || other.Count != Count)
        {
            return false;
        }

        for (var i = 0; i < Count; i++)
        {
            if (!Equals(Items.GetValue(i), other.Items.GetValue(i)))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as GgufArray);

    public override int GetHashCode() => HashCode.Combine(ElementType, Count);

    public override string ToString() => $"Array<{ElementType}>[{Count}]";
}
