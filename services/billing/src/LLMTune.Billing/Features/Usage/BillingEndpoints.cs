using System.Globalization;
using System.Security.Claims;
using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Admission;
using LLMTune.Billing.Features.Charging;
using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Billing.Features.Usage;

public sealed record Allowance(long Used, long? Limit, long? Remaining)
{
    public static Allowance Of(long used, long? limit) => new(used, limit, limit is { } l ? Math.Max(0, l - used) : null);
}

public sealed record Period(DateTime Start, DateTime End);

public sealed record LimitsView(
    long? RequestsPerMinute, long? RequestsPerMinutePerKey, long? TokensPerMinute, long? TokensPerMinutePerKey,
    long? ConcurrentRequests, long? ConcurrentRequestsPerKey, decimal PricePerRequestUsd, decimal PricePerMillionTrainedTokensUsd, bool Prepaid,
    bool PriorityFineTunes);

public sealed record BillingView(
    string WorkspaceId, string Plan, decimal BalanceUsd, Period Period, Allowance Requests, Allowance FineTunes, LimitsView Limits);

public sealed record UsageRow(
    string? Day, string? Model, string? KeyId, long Requests, long PromptTokens, long CompletionTokens, long TrainedTokens, decimal CostUsd);

public sealed record UsageView(string From, string To, string GroupBy, IReadOnlyList<UsageRow> Data, UsageRow Total);

public static class BillingEndpoints
{
    private const int MaxDays = 366;

    public static void MapBillingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/billing", async (ClaimsPrincipal user, PlanView plans, Balances accounts, TimeProvider time, CancellationToken ct) =>
        {
            var workspaceId = user.WorkspaceIdOf();
            var now = time.GetUtcNow();
            var (plan, limits) = await plans.ForWorkspaceAsync(workspaceId, ct);
            // Counted by the gateway's admission, which sends them with the request.
            var requests = Count(user, WorkspaceClaims.MonthRequests);
            var fineTunes = Count(user, WorkspaceClaims.MonthFineTunes);
            return Results.Ok(new BillingView(
                workspaceId,
                plan,
                Money.ToUsd(await accounts.BalanceMicrosAsync(workspaceId, ct)),
                new Period(CounterWindows.MonthStart(now), CounterWindows.MonthEnd(now)),
                Allowance.Of(requests, limits.MonthlyRequests),
                Allowance.Of(fineTunes, limits.MonthlyFineTunes),
                new LimitsView(limits.RequestsPerMinute, limits.RequestsPerMinutePerKey, limits.TokensPerMinute, limits.TokensPerMinutePerKey,
                    limits.ConcurrentRequests, limits.ConcurrentRequestsPerKey, limits.PricePerRequestUsd, limits.PricePerMillionTrainedTokensUsd,
                    limits.Prepaid, limits.PriorityFineTunes)));
        }).WithTags("Billing");

        app.MapGet("/v1/usage", async (string? from, string? to, string? groupBy, ClaimsPrincipal user, Meter charging,
            TimeProvider time, CancellationToken ct) =>
        {
            var today = time.GetUtcNow().UtcDateTime.Date;
            var first = ParseDay(from, "from") ?? new DateTime(today.Year, today.Month, 1, 0, 0, 0, DateTimeKind.Utc);
            var last = ParseDay(to, "to") ?? DateTime.SpecifyKind(today, DateTimeKind.Utc);
            if (last < first)
            {
                throw ApiException.Invalid("to", "to must not be before from.");
            }

            if ((last - first).TotalDays >= MaxDays)
            {
                throw ApiException.Invalid("to", $"At most {MaxDays} days per query.");
            }

            var grouping = groupBy ?? "day";
            Func<DailyUsage, string> keyOf = grouping switch
            {
                "day" => d => Day(d.Day),
                "model" => d => d.Model,
                "key" => d => d.KeyId,
                _ => throw ApiException.Invalid("groupBy", "groupBy must be one of: day, model, key."),
            };

            var days = await charging.DaysAsync(user.WorkspaceIdOf(), first, last.AddDays(1), ct);
            var rows = days.GroupBy(keyOf, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => Row(g, grouping == "day" ? g.Key : null, grouping == "model" ? g.Key : null, grouping == "key" ? g.Key : null))
                .ToList();
            return Results.Ok(new UsageView(Day(first), Day(last), grouping, rows, Row(days, null, null, null)));
        }).WithTags("Billing");
    }

    private static long Count(ClaimsPrincipal user, string claim) =>
        long.TryParse(user.FindFirstValue(claim), NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count : 0;

    private static UsageRow Row(IEnumerable<DailyUsage> days, string? day, string? model, string? keyId)
    {
        long requests = 0, prompt = 0, completion = 0, trained = 0, cost = 0;
        foreach (var d in days)
        {
            requests += d.Requests;
            prompt += d.PromptTokens;
            completion += d.CompletionTokens;
            trained += d.TrainedTokens;
            cost += d.CostMicros;
        }

        return new UsageRow(day, model, keyId, requests, prompt, completion, trained, Money.ToUsd(cost));
    }

    private static string Day(DateTime day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>A UTC day, <c>2025-11-01</c> or an ISO 8601 timestamp (its day counts).</summary>
    private static DateTime? ParseDay(string? value, string param)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (DateTime.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var day)
            || DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out day))
        {
            return DateTime.SpecifyKind(day.Date, DateTimeKind.Utc);
        }

        throw ApiException.Invalid(param, $"{param} must be a date such as 2025-11-01 (UTC).");
    }
}
