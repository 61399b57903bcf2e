using System.Text;

namespace LLMTune.Testing.BadInput;

/// <summary>
/// A JSON value kept as text, so bodies can hold what no serializer writes: 1e309, 2^63, lone surrogates,
/// operator objects, nesting past any depth limit.
/// </summary>
public abstract record RawJson
{
    public abstract void WriteTo(StringBuilder text);

    // Sealed: derived records would otherwise print their members instead of the JSON.
    public sealed override string ToString()
    {
        var text = new StringBuilder();
        WriteTo(text);
        return text.ToString();
    }

    public static RawJson Text(string json) => new RawToken(json);

    /// <summary>A JSON string literal of ASCII-safe content (callers pass escapes such as <c>\ud800</c> themselves).</summary>
    public static RawJson String(string escapedContent) => new RawToken($"\"{escapedContent}\"");
}

public sealed record RawToken(string Json) : RawJson
{
    public override void WriteTo(StringBuilder text) => text.Append(Json);
}

public sealed record RawObject(IReadOnlyList<KeyValuePair<string, RawJson>> Properties) : RawJson
{
    public override void WriteTo(StringBuilder text)
    {
        text.Append('{');
        for (var i = 0; i < Properties.Count; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            text.Append('"').Append(Properties[i].Key).Append("\":");
            Properties[i].Value.WriteTo(text);
        }

        text.Append('}');
    }

    public RawObject With(string name, RawJson? value)
    {
        var properties = Properties.Where(p => p.Key != name).ToList();
        if (value is not null)
        {
            properties.Add(new(name, value));
        }

        return new RawObject(properties);
    }

    public RawJson? Get(string name) => Properties.FirstOrDefault(p => p.Key == name).Value;
}

public sealed record RawArray(IReadOnlyList<RawJson> Items) : RawJson
{
    public override void WriteTo(StringBuilder text)
    {
        text.Append('[');
        for (var i = 0; i < Items.Count; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            Items[i].WriteTo(text);
        }

        text.Append(']');
    }
}

/// <summary>Where a value sits in a body: property names and array indexes from the root.</summary>
public sealed record JsonPath(IReadOnlyList<string> Segments)
{
    public static readonly JsonPath Root = new([]);

    public JsonPath Then(string segment) => new([.. Segments, segment]);

    public override string ToString() => Segments.Count == 0 ? "$" : string.Join('.', Segments);

    /// <summary>The tree with the value at this path replaced (null removes it); missing parents are left alone.</summary>
    public RawJson Replace(RawJson root, RawJson? value) => Replace(root, 0, value) ?? RawJson.Text("null");

    private RawJson? Replace(RawJson node, int depth, RawJson? value)
    {
        if (depth == Segments.Count)
        {
            return value;
        }

        var segment = Segments[depth];
        switch (node)
        {
            case RawObject obj when obj.Get(segment) is { } child:
                return obj.With(segment, Replace(child, depth + 1, value));
            case RawObject obj when depth == Segments.Count - 1:
                return obj.With(segment, value); // a property the base body does not have (e.g. another spelling)
            case RawArray array when int.TryParse(segment, out var index) && index < array.Items.Count:
                var items = array.Items.ToList();
                if (Replace(items[index], depth + 1, value) is { } replaced)
                {
                    items[index] = replaced;
                }
                else
                {
                    items.RemoveAt(index);
                }

                return new RawArray(items);
            default:
                return node;
        }
    }
}
