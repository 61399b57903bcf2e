using System.Linq.Expressions;
using System.Reflection;

namespace LLMTune.Platform.Storage;

/// <summary>
/// Rewrites filter shapes that newer C# emits but the LiteDB and MongoDB LINQ translators do not know.
/// </summary>
/// <remarks>
/// C# 14 binds <c>array.Contains(x.Field)</c> to <c>MemoryExtensions.Contains(ReadOnlySpan&lt;T&gt;, T)</c> through an
/// implicit array-to-span conversion; turned back into <c>Enumerable.Contains</c> both stores translate it to an IN query.
/// </remarks>
internal sealed class FilterNormalizer : ExpressionVisitor
{
    private static readonly FilterNormalizer Instance = new();

    private static readonly MethodInfo EnumerableContains = typeof(Enumerable)
        .GetMethods(BindingFlags.Public | BindingFlags.Static)
        .Single(m => m.Name == nameof(Enumerable.Contains) && m.GetParameters().Length == 2);

    public static Expression<Func<T, bool>> Normalize<T>(Expression<Func<T, bool>> filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return (Expression<Func<T, bool>>)Instance.Visit(filter);
    }

    protected override Expression VisitMethodCall(MethodCallExpression node)
    {
        if (node.Method.DeclaringType == typeof(MemoryExtensions)
            && node.Method.Name == nameof(MemoryExtensions.Contains)
            && node.Arguments.Count == 2
            && UnwrapSpan(node.Arguments[0]) is { } source)
        {
            var elementType = node.Arguments[1].Type;
            return Expression.Call(EnumerableContains.MakeGenericMethod(elementType), Visit(source), Visit(node.Arguments[1]));
        }

        return base.VisitMethodCall(node);
    }

    /// <summary>The array behind an implicit array-to-span conversion, if that is what <paramref name="span"/> is.</summary>
    private static Expression? UnwrapSpan(Expression span) => span switch
    {
        MethodCallExpression { Method.Name: "op_Implicit", Arguments: [var array] } when array.Type.IsArray => array,
        UnaryExpression { NodeType: ExpressionType.Convert, Operand: var array } when array.Type.IsArray => array,
        _ => null,
    };
}
