using System.Linq.Expressions;

namespace LLMTune.Platform.Storage;

/// <summary>One key of a sort order.</summary>
public sealed record SortKey<T>(Expression<Func<T, object?>> Field, bool Descending);

/// <summary>
/// Sort order, offset and limit for <see cref="IDocumentCollection{T}.FindAsync"/>. Immutable; build fluently:
/// <c>FindOptions&lt;Job&gt;.OrderByDescending(x =&gt; x.CreatedAt).ThenByDescending(x =&gt; x.Id).Take(20)</c>.
/// </summary>
public sealed record FindOptions<T>
{
    public IReadOnlyList<SortKey<T>> Sort { get; init; } = [];

    /// <summary>At most this many documents; null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>Documents to skip before the first one returned.</summary>
    public int Offset { get; init; }

    public static FindOptions<T> OrderBy(Expression<Func<T, object?>> field) => new() { Sort = [new(field, false)] };

    public static FindOptions<T> OrderByDescending(Expression<Func<T, object?>> field) => new() { Sort = [new(field, true)] };

    public static FindOptions<T> First(int limit) => new FindOptions<T>().Take(limit);

    public FindOptions<T> ThenBy(Expression<Func<T, object?>> field) => this with { Sort = [.. Sort, new(field, false)] };

    public FindOptions<T> ThenByDescending(Expression<Func<T, object?>> field) => this with { Sort = [.. Sort, new(field, true)] };

    public FindOptions<T> Take(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return this with { Limit = limit };
    }

    public FindOptions<T> Skip(int offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return this with { Offset = offset };
    }
}
