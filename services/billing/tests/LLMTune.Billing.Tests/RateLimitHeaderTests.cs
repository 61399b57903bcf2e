using LLMTune.Billing.Features.Admission;

namespace LLMTune.Billing.Tests;

public sealed class RateLimitHeaderTests
{
    [Theory]
    [InlineData(0.2, "1s")]
    [InlineData(45, "45s")]
    [InlineData(60, "1m0s")]
    [InlineData(2625, "43m45s")]
    [InlineData(3600, "1h0m0s")]
    [InlineData(2_592_000, "720h0m0s")]
    public void Resets_use_OpenAIs_duration_format_rounded_up_to_whole_seconds(double seconds, string expected) =>
        Assert.Equal(expected, RateLimitHeaders.Duration(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Each_trio_describes_the_limit_with_the_fewest_left_and_the_IETF_headers_list_requests_and_concurrency_limits()
    {
        var now = new DateTimeOffset(2026, 1, 31, 23, 59, 0, TimeSpan.Zero);
        var minuteEnd = now.UtcDateTime.AddMinutes(1);
        var monthEnd = new DateTime(2026, 2, 1, 0, 0, 0, DateTimeKind.Utc);
        var headers = RateLimitHeaders.For(
        [
            new LimitState("minute", LimitUnit.Requests, 60, 40, minuteEnd, TimeSpan.FromMinutes(1)),
            new LimitState("monthly", LimitUnit.Requests, 1000, 3, monthEnd, TimeSpan.FromDays(31)),
            new LimitState("key-tokens-minute", LimitUnit.Tokens, 40_000, 39_500, minuteEnd, TimeSpan.FromMinutes(1)),
            new LimitState("tokens-minute", LimitUnit.Tokens, 40_000, 39_000, minuteEnd, TimeSpan.FromMinutes(1)),
            new LimitState("concurrent", LimitUnit.Concurrent, 4, 3, now.UtcDateTime, TimeSpan.Zero),
        ], now);

        Assert.Equal("1000", headers["x-ratelimit-limit-requests"]);
        Assert.Equal("3", headers["x-ratelimit-remaining-requests"]);
        Assert.Equal("1m0s", headers["x-ratelimit-reset-requests"]);
        Assert.Equal("40000", headers["x-ratelimit-limit-tokens"]);
        Assert.Equal("39000", headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("1m0s", headers["x-ratelimit-reset-tokens"]);
        Assert.Equal("\"minute\";q=60;w=60, \"monthly\";q=1000;w=2678400, \"concurrent\";q=4;qu=\"concurrent-requests\"", headers["RateLimit-Policy"]);
        Assert.Equal("\"minute\";r=40;t=60, \"monthly\";r=3;t=60, \"concurrent\";r=3", headers["RateLimit"]);
    }
}
