using System.Globalization;
using System.Text;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Platform.Http;

/// <summary>The list shape of every LLMTune endpoint: newest first, cursor-paginated.</summary>
public sealed record Page<T>(IReadOnlyList<T> Data, bool HasMore, string? NextCursor);

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
    public Page<TOut> ToPage<TIn, TOut>(IReadOnlyList<TIn> fetched, DateTime snapshot, Func<TIn, TOut> map)
    {
        var hasMore = fetched.Count > Limit;
        var next = hasMore
            ? Convert.ToBase64String(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{snapshot.Ticks}|{Offset + Limit}")))
            : null;
        return new Page<TOut>(fetched.Take(Limit).Select(map).ToList(), hasMore, next);
    }
}
