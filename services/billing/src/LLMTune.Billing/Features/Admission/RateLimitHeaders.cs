using System.Globalization;
using System.Text;

namespace LLMTune.Billing.Features.Admission;

public enum LimitUnit
{
    Requests,
    Tokens,

    /// <summary>Requests in flight at once: no window, a unit comes back when a response ends.</summary>
    Concurrent,
}

/// <summary>One limit as the caller sees it after this request: e.g. "monthly": 1000 requests, 12 left, resets in 3 days.</summary>
public sealed record LimitState(string Name, LimitUnit Unit, long Limit, long Remaining, DateTime ResetAt, TimeSpan Window);

/// <summary>
/// The rate-limit headers of a response, built from the limits admission saw: OpenAI's <c>x-ratelimit-*</c> (the
/// requests trio describes the requests limit with the fewest left, the tokens trio the tokens limit with the fewest
/// left) and the IETF draft's <c>RateLimit-Policy</c> / <c>RateLimit</c> listing every requests limit and the
/// concurrency limits (quota unit <c>concurrent-requests</c>, no window).
/// </summary>
public static class RateLimitHeaders
{
    public static Dictionary<string, string> For(IReadOnlyList<LimitState> limits, DateTimeOffset now)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var requests = limits.Where(l => l.Unit == LimitUnit.Requests).ToList();
        if (requests.MinBy(l => l.Remaining) is { } tightest)
        {
            headers["x-ratelimit-limit-requests"] = Number(tightest.Limit);
            headers["x-ratelimit-remaining-requests"] = Number(tightest.Remaining);
            headers["x-ratelimit-reset-requests"] = Duration(tightest.ResetAt - now);
        }

        if (limits.Where(l => l.Unit == LimitUnit.Tokens).MinBy(l => l.Remaining) is { } tokens)
        {
            headers["x-ratelimit-limit-tokens"] = Number(tokens.Limit);
            headers["x-ratelimit-remaining-tokens"] = Number(tokens.Remaining);
            headers["x-ratelimit-reset-tokens"] = Duration(tokens.ResetAt - now);
        }

        var policies = requests.Concat(limits.Where(l => l.Unit == LimitUnit.Concurrent)).ToList();
        if (policies.Count > 0)
        {
            headers["RateLimit-Policy"] = string.Join(", ", policies.Select(l => l.Unit == LimitUnit.Concurrent
                ? $"\"{l.Name}\";q={Number(l.Limit)};qu=\"concurrent-requests\""
                : $"\"{l.Name}\";q={Number(l.Limit)};w={Number((long)l.Window.TotalSeconds)}"));
            headers["RateLimit"] = string.Join(", ", policies.Select(l => l.Unit == LimitUnit.Concurrent
                ? $"\"{l.Name}\";r={Number(l.Remaining)}"
                : $"\"{l.Name}\";r={Number(l.Remaining)};t={Number(Seconds(l.ResetAt - now))}"));
        }

        return headers;
    }

    /// <summary>Whole seconds until a reset, rounded up and at least 1 (as in <c>Retry-After</c>).</summary>
    public static long Seconds(TimeSpan untilReset) => Math.Max(1, (long)Math.Ceiling(untilReset.TotalSeconds));

    /// <summary>OpenAI's duration format: <c>1s</c>, <c>6m0s</c>, <c>2h3m4s</c> (days count as hours).</summary>
    public static string Duration(TimeSpan untilReset)
    {
        var seconds = Seconds(untilReset);
        var text = new StringBuilder();
        if (seconds >= 3600)
        {
            text.Append(CultureInfo.InvariantCulture, $"{seconds / 3600}h");
        }

        if (seconds >= 60)
        {
            text.Append(CultureInfo.InvariantCulture, $"{seconds % 3600 / 60}m");
        }

        text.Append(CultureInfo.InvariantCulture, $"{seconds % 60}s");
        return text.ToString();
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
