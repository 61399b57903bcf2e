using System.Globalization;
using System.Linq.Expressions;
using System.Text;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Storage;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Platform.Http;

/// <summary>The list shape of every LLMTune endpoint: newest first, cursor-paginated.</summary>
public sealed record Page<T>(IReadOnlyList<T> Data, bool HasMore, string? NextCursor)
{
    /// <summary>The same page with each item mapped, e.g. documents to their API views.</summary>
    public Page<TOut> Select<TOut>(Func<T, TOut> map) => new(Data.Select(map).ToList(), HasMore, NextCursor);
}

/// <summary>
/// Cursor pagination, newest first. The opaque cursor holds the time the listing started (<see cref="AsOf"/>) and
/// how many items were already returned: items created later never shift the pages being walked.
/// </summary>
public sealed record PageRequest(int Limit, DateTime? AsOf, int Offset)
{
    public const int DefaultLimit = 20;
    public const int MaxLimit = 100;

    /// <summary>Reads <c>limit</c> and <c>cursor</c>; throws a 400 naming the parameter when either is bad.</summary>
    public static PageRequest From(int? limit, string? cursor)
    {
        var take = limit ?? DefaultLimit;
        if (take is < 1 or > MaxLimit)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", $"limit must be between 1 and {MaxLimit}.", "limit");
        }

        if (string.IsNullOrEmpty(cursor))
        {
            return new PageRequest(take, null, 0);
        }

        try
        {
            var parts = Encoding.UTF8.GetString(Convert.FromBase64String(cursor)).Split('|');
            var asOf = new DateTime(long.Parse(parts[0], CultureInfo.InvariantCulture), DateTimeKind.Utc);
            var offset = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return offset < 0 ? throw new FormatException() : new PageRequest(take, asOf, offset);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or IndexOutOfRangeException)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", "cursor is not a cursor this API returned.", "cursor");
        }
    }

    /// <summary>The listing's snapshot time: the cursor's, or now for a first page.</summary>
    public DateTime Snapshot(TimeProvider time) => AsOf ?? time.GetUtcNow().UtcDateTime;

    /// <summary>Builds the page from up to <c>Limit + 1</c> items fetched newest first, skipping <see cref="Offset"/>.</summary>
    internal Page<T> ToPage<T>(IReadOnlyList<T> fetched, DateTime snapshot)
    {
        var hasMore = fetched.Count > Limit;
        var next = hasMore
            ? Convert.ToBase64String(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{snapshot.Ticks}|{Offset + Limit}")))
            : null;
        return new Page<T>(fetched.Take(Limit).ToList(), hasMore, next);
    }
}

public static class PagedQueries
{
    /// <summary>
    /// One page of a collection, newest first (createdAt, then id, descending). <paramref name="filterAsOf"/> gets the
    /// listing's snapshot time and must keep only documents created at or before it, so later inserts never shift pages.
    /// </summary>
    public static async Task<Page<T>> FindPageAsync<T>(
        this IDocumentCollection<T> collection,
        PageRequest page,
        TimeProvider time,
        Func<DateTime, Expression<Func<T, bool>>> filterAsOf,
        Expression<Func<T, object?>> createdAt,
        Expression<Func<T, object?>> id,
        CancellationToken ct)
        where T : class, IDocument
    {
        var snapshot = page.Snapshot(time);
        var found = await collection.FindAsync(
            filterAsOf(snapshot),
            FindOptions<T>.OrderByDescending(createdAt).ThenByDescending(id).Skip(page.Offset).Take(page.Limit + 1),
            ct);
        return page.ToPage(found, snapshot);
    }
}
