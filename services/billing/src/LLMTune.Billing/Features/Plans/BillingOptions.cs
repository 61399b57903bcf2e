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

    /// <summary>Prompt plus completion tokens per minute, per workspace (reserved at admission, settled to actual usage).</summary>
    [Range(0, long.MaxValue)]
    public long? TokensPerMinute { get; set; }

    /// <summary>Prompt plus completion tokens per minute, per API key.</summary>
    [Range(0, long.MaxValue)]
    public long? TokensPerMinutePerKey { get; set; }

    /// <summary>Requests in flight at once, per workspace (held until the response ends, streams included).</summary>
    [Range(0, long.MaxValue)]
    public long? ConcurrentRequests { get; set; }

    /// <summary>Requests in flight at once, per API key.</summary>
    [Range(0, long.MaxValue)]
    public long? ConcurrentRequestsPerKey { get; set; }

    /// <summary>Fine-tune jobs of this plan go before those of plans without it in the trainer's queue.</summary>
    public bool PriorityFineTunes { get; set; }

    /// <summary>Charged per inference request (from <c>InferenceCompleted</c>).</summary>
    [Range(typeof(decimal), "0", "1000")]
    public decimal PricePerRequestUsd { get; set; }

    /// <summary>
    /// Charged per million tokens a fine-tune trained on (every epoch counted), from <c>TrainingCompleted</c>, once per
    /// job; e.g. 2 is $0.000002 a token.
    /// </summary>
    [Range(typeof(decimal), "0", "1000000")]
    public decimal PricePerMillionTrainedTokensUsd { get; set; }

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
        TokensPerMinutePerKey = 40_000,
        ConcurrentRequests = 4,
        ConcurrentRequestsPerKey = 4,
    };

    public PlanLimits Growth { get; set; } = new()
    {
        RequestsPerMinute = 600,
        RequestsPerMinutePerKey = 600,
        TokensPerMinute = 400_000,
        TokensPerMinutePerKey = 400_000,
        ConcurrentRequests = 32,
        ConcurrentRequestsPerKey = 32,
        PricePerRequestUsd = 0.001m,
        PricePerMillionTrainedTokensUsd = 2m,
        Prepaid = true,
        PriorityFineTunes = true,
    };

    public PlanLimits Scale { get; set; } = new()
    {
        RequestsPerMinute = 6000,
        RequestsPerMinutePerKey = 6000,
        TokensPerMinute = 4_000_000,
        TokensPerMinutePerKey = 4_000_000,
        ConcurrentRequests = 256,
        ConcurrentRequestsPerKey = 256,
        PricePerRequestUsd = 0.001m,
        PricePerMillionTrainedTokensUsd = 2m,
        PriorityFineTunes = true,
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

    public AdmissionOptions Admission { get; set; } = new();
}

/// <summary>How admission reserves what it cannot know before a request runs (<c>Billing:Admission</c>).</summary>
public sealed class AdmissionOptions
{
    /// <summary>
    /// The completion tokens an inference request that names no <c>maxTokens</c> / <c>max_tokens</c> reserves: the
    /// inference service's default cap (<c>Inference:DefaultMaxTokens</c>).
    /// </summary>
    [Range(1, 1_000_000)]
    public int DefaultMaxTokens { get; set; } = 512;

    /// <summary>
    /// How long an in-flight count outlives the last request admitted against it: a gateway that dies mid-request
    /// cannot give its units back, so the count of an idle workspace or key is dropped after this long.
    /// </summary>
    public TimeSpan InFlightExpiry { get; set; } = TimeSpan.FromMinutes(15);
}
