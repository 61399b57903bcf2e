using System.ComponentModel.DataAnnotations;

namespace LLMTune.Billing.Features.Plans;

/// <summary>
/// The limits and prices of one plan (or of one workspace, when the operator overrides them). Null limits are unlimited.
/// Operators edit them in configuration, e.g. <c>Billing__Plans__Sandbox__MonthlyRequests=2000</c>.
/// </summary>
public sealed class PlanLimits
{
    /// <summary>Requests per calendar month (UTC); counted when admitted.</summary>
    [Range(0, long.MaxValue)]
    public long? MonthlyRequests { get; set; }

    /// <summary>Fine-tune jobs created per calendar month (UTC).</summary>
    [Range(0, int.MaxValue)]
    public int? MonthlyFineTunes { get; set; }

    [Range(0, long.MaxValue)]
    public long? RequestsPerMinute { get; set; }

    [Range(0, long.MaxValue)]
    public long? RequestsPerMinutePerKey { get; set; }

    /// <summary>Prompt plus completion tokens per minute, per workspace.</summary>
    [Range(0, long.MaxValue)]
    public long? TokensPerMinute { get; set; }

    /// <summary>Charged per inference request (from <c>InferenceCompleted</c>).</summary>
    [Range(typeof(decimal), "0", "1000")]
    public decimal PricePerRequestUsd { get; set; }

    /// <summary>Requests need a positive balance (402 <c>insufficient_credits</c> otherwise).</summary>
    public bool Prepaid { get; set; }

    public PlanLimits Clone() => (PlanLimits)MemberwiseClone();
}

public sealed class PlanSet
{
    public PlanLimits Sandbox { get; set; } = new()
    {
        MonthlyRequests = 1000,
        MonthlyFineTunes = 3,
        RequestsPerMinute = 60,
        RequestsPerMinutePerKey = 60,
        TokensPerMinute = 40_000,
    };

    public PlanLimits Growth { get; set; } = new()
    {
        RequestsPerMinute = 600,
        RequestsPerMinutePerKey = 600,
        TokensPerMinute = 400_000,
        PricePerRequestUsd = 0.001m,
        Prepaid = true,
    };

    public PlanLimits Scale { get; set; } = new()
    {
        RequestsPerMinute = 6000,
        RequestsPerMinutePerKey = 6000,
        TokensPerMinute = 4_000_000,
        PricePerRequestUsd = 0.001m,
    };
}

public sealed class BillingOptions
{
    public const string Section = "Billing";

    public PlanSet Plans { get; set; } = new();

    /// <summary>
    /// Per-workspace limits set by the operator (the Scale plan's "limits set per workspace"), keyed by workspace id;
    /// they replace the plan's limits for that workspace.
    /// </summary>
    public Dictionary<string, PlanLimits> Workspaces { get; set; } = new(StringComparer.Ordinal);
}
