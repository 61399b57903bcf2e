using System.Collections;

namespace LLMTune.Engine.Gguf;

/// <summary>
/// GGUF key/value metadata in file order, with getters that accept whatever integer or float width a writer used.
/// </summary>
public sealed class GgufMetadata : IReadOnlyDictionary<string, GgufValue>
{
    private readonly OrderedDictionary<string, GgufValue> _entries = new(StringComparer.Ordinal);

    public GgufValue this[string key] => _entries.TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"GGUF metadata has no key '{key}'.");

    public IEnumerable<string> Keys => _entries.Keys;

    public IEnumerable<GgufValue> Values => _entries.Values;

    public int Count => _entries.Count;

    /// <summary>Adds or replaces a key; a replaced key keeps its position.</summary>
    public GgufMetadata Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        _entries[key] = value;
        return this;
    }

    public GgufMetadata Set(string key, string value) => Set(key, GgufValue.String(value));
    public GgufMetadata Set(string key, uint value) => Set(key, GgufValue.UInt32(value));
    public GgufMetadata Set(string key, int value) => Set(key, GgufValue.Int32(value));
    public GgufMetadata Set(string key, float value) => Set(key, GgufValue.Float32(value));
    public GgufMetadata Set(string key, bool value) => Set(key, GgufValue.Bool(value));
    public GgufMetadata Set(string key, ulong value) => Set(key, GgufValue.UInt64(value));
    public GgufMetadata Set(string key, GgufArray value) => Set(key, GgufValue.Array(value));

    public bool Remove(string key) => _entries.Remove(key);

    public bool ContainsKey(string key) => _entries.ContainsKey(key);

    public bool TryGetValue(string key, out GgufValue value) => _entries.TryGetValue(key, out value!);

    public string GetString(string key) => Expect(key, GgufValueType.String) is string s ? s : throw new InvalidOperationException();

    public string? GetStringOrDefault(string key, string? fallback = null) =>
        _entries.TryGetValue(key, out var v) && v.Type == GgufValueType.String ? (string)v.Value : fallback;

    public long GetInt64(string key) => this[key].AsInt64();

    public int GetInt32(string key) => checked((int)GetInt64(key));

    public uint GetUInt32(string key) => checked((uint)GetInt64(key));

    public ulong GetUInt64(string key) => this[key] is { Type: GgufValueType.UInt64 } v ? (ulong)v.Value : checked((ulong)GetInt64(key));

    public long? GetInt64OrNull(string key) => _entries.TryGetValue(key, out var v) ? v.AsInt64() : null;

    public uint? GetUInt32OrNull(string key) => _entries.TryGetValue(key, out var v) ? checked((uint)v.AsInt64()) : null;

    public float GetFloat32(string key) => (float)this[key].AsDouble();

    public float? GetFloat32OrNull(string key) => _entries.TryGetValue(key, out var v) ? (float)v.AsDouble() : null;

    public double GetFloat64(string key) => this[key].AsDouble();

    public bool GetBool(string key) => this[key] switch
    {
        { Type: GgufValueType.Bool } v => (bool)v.Value,
        var v => v.AsInt64() != 0,
    };

    public bool? GetBoolOrNull(string key) => _entries.ContainsKey(key) ? GetBool(key) : null;

    public GgufArray GetArray(string key) => (GgufArray)Expect(key, GgufValueType.Array);

    /// <summary>The array at <paramref name="key"/> with its items converted to <typeparamref name="T"/>.</summary>
    public T[] GetArray<T>(string key) => GetArray(key).ToArray<T>();

    public T[]? GetArrayOrNull<T>(string key) => _entries.TryGetValue(key, out var v) && v.Type == GgufValueType.Array ? ((GgufArray)v.Value).ToArray<T>() : null;

    public IEnumerator<KeyValuePair<string, GgufValue>> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private object Expect(string key, GgufValueType type)
    {
        var value = this[key];
        return value.Type == type ? value.Value : throw new InvalidCastException($"GGUF metadata '{key}' is {value.Type}, not {type}.");
    }
}
