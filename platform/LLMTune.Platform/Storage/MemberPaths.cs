using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.RegularExpressions;

namespace LLMTune.Platform.Storage;

/// <summary>Turns field selectors (<c>x =&gt; x.Stats.Count</c>) into member chains and cached accessors.</summary>
internal static partial class MemberPaths
{
    private static readonly ConcurrentDictionary<(Type, string), Delegate> Getters = new();
    private static readonly ConcurrentDictionary<(Type, string), Delegate> Setters = new();

    /// <summary>The selector's body without the boxing/enum conversions C# inserts for <c>object?</c> selectors.</summary>
    public static Expression Body(LambdaExpression selector)
    {
        var body = selector.Body;
        while (body is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } convert)
        {
            body = convert.Operand;
        }

        return body;
    }

    /// <summary>Member names from the document root, e.g. ["Stats", "Count"]; throws for anything but a member chain.</summary>
    public static IReadOnlyList<MemberInfo> Chain(LambdaExpression selector)
    {
        var members = new List<MemberInfo>();
        var node = Body(selector);
        while (node is MemberExpression member)
        {
            members.Add(member.Member);
            node = member.Expression;
        }

        if (node is not ParameterExpression || members.Count == 0)
        {
            throw new ArgumentException($"'{selector}' must select a field of the document, like x => x.Field.", nameof(selector));
        }

        members.Reverse();
        return members;
    }

    public static string Dotted(LambdaExpression selector) => string.Join('.', Chain(selector).Select(m => m.Name));

    public static Func<T, TValue> Getter<T, TValue>(Expression<Func<T, TValue>> selector) =>
        (Func<T, TValue>)Getters.GetOrAdd((typeof(T), Dotted(selector)), _ => selector.Compile());

    public static Action<T, TValue> Setter<T, TValue>(Expression<Func<T, TValue>> selector) =>
        (Action<T, TValue>)Setters.GetOrAdd((typeof(T), Dotted(selector)), _ =>
        {
            var value = Expression.Parameter(typeof(TValue), "value");
            var target = Body(selector);
            var assign = Expression.Assign(target, value);
            return Expression.Lambda<Action<T, TValue>>(assign, selector.Parameters[0], value).Compile();
        });

    /// <summary>Names valid as both a MongoDB and a LiteDB collection name.</summary>
    public static string ValidateCollectionName(string name)
    {
        if (string.IsNullOrEmpty(name) || !CollectionName().IsMatch(name))
        {
            throw new ArgumentException($"Collection name '{name}' must match [A-Za-z][A-Za-z0-9_]* (at most 60 characters).", nameof(name));
        }

        return name;
    }

    public static string RequireId(IDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        if (string.IsNullOrEmpty(doc.Id))
        {
            throw new ArgumentException("A document needs a non-empty Id before it is stored.", nameof(doc));
        }

        return doc.Id;
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]{0,59}$")]
    private static partial Regex CollectionName();
}
