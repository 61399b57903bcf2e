using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>The <c>Webhooks</c> section (where deliveries may go is <c>Outbound:AllowedHosts</c>): how secrets are encrypted, and the retry policy.</summary>
public sealed class WebhooksOptions
{
    public const string Section = "Webhooks";

    /// <summary>
    /// The AES-256-GCM key (base64 of 32 bytes) that encrypts stored signing secrets (env <c>Webhooks__EncryptionKey</c>).
    /// Every replica needs the same key. Required in split mode; the single process falls back to <see cref="EncryptionKeyFile"/>.
    /// </summary>
    public string? EncryptionKey { get; set; }

    /// <summary>Single-process mode without <see cref="EncryptionKey"/>: a key generated on first start and kept in this file.</summary>
    public string EncryptionKeyFile { get; set; } = "./data/webhooks-encryption-key";

    /// <summary>How long a rotated-out secret still signs (both signatures are sent meanwhile).</summary>
    public TimeSpan RotationOverlap { get; set; } = TimeSpan.FromHours(24);

    public DeliveryOptions Delivery { get; set; } = new();
}

public sealed class DeliveryOptions
{
    /// <summary>False runs the API and the event intake only; another process delivers.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Waits before each retry after the first attempt; after the last the delivery is failed.</summary>
    public List<TimeSpan> RetrySchedule { get; set; } =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
        TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    /// <summary>Each wait is stretched or shrunk by up to this share at random, so retries of many deliveries spread out.</summary>
    public double Jitter { get; set; } = 0.1;

    /// <summary>A receiver must answer 2xx within this time.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a claimed delivery is reserved for one worker; after that any replica may take it again.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often an idle worker looks for due deliveries (new events in this process wake it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries this process sends at the same time.</summary>
    public int Concurrency { get; set; } = 64;

    /// <summary>An endpoint whose deliveries keep failing for this long is disabled.</summary>
    public TimeSpan DisableEndpointAfter { get; set; } = TimeSpan.FromDays(5);

    /// <summary>Longest Retry-After (429/503) that is honoured as given; longer ones are cut to this.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromHours(10);
}

internal sealed class WebhooksOptionsValidator : IValidateOptions<WebhooksOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhooksOptions o)
    {
        var problems = new List<string>();
        if (o.EncryptionKey is { Length: > 0 } key && !SecretProtector.IsValidKey(key))
        {
            problems.Add("Webhooks:EncryptionKey must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`).");
        }

        if (o.RotationOverlap < TimeSpan.Zero)
        {
            problems.Add("Webhooks:RotationOverlap must not be negative.");
        }

        var d = o.Delivery;
        if (d.RetrySchedule.Any(t => t < TimeSpan.Zero) || d.Jitter is < 0 or > 1 || d.Timeout <= TimeSpan.Zero
            || d.LeaseDuration <= d.Timeout || d.PollInterval <= TimeSpan.Zero || d.Concurrency < 1 || d.DisableEndpointAfter <= TimeSpan.Zero
            || d.MaxRetryAfter < TimeSpan.Zero)
        {
            problems.Add("Webhooks:Delivery: RetrySchedule non-negative, 0 <= Jitter <= 1, Timeout positive, LeaseDuration > Timeout, PollInterval positive, Concurrency >= 1, DisableEndpointAfter positive.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
