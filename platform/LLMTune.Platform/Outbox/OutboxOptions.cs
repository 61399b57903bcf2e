using System.ComponentModel.DataAnnotations;

namespace LLMTune.Platform.Outbox;

/// <summary>Configuration section <c>Outbox</c>: how events recorded in the store reach the bus.</summary>
public sealed class OutboxOptions
{
    public const string Section = "Outbox";

    /// <summary>How often the dispatcher looks for due events it was not woken for (another replica's, retries).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one publish may wait for the broker before it counts as failed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First wait after a failed publish; it doubles per failure in a row up to <see cref="RetryMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan RetryMinDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long sent events are kept (for inspection) before the store deletes them.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "90.00:00:00")]
    public TimeSpan SentRetention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How long a consumer remembers a message id it handled, so a redelivery has no second effect.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "90.00:00:00")]
    public TimeSpan InboxRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How long an event nobody waits on (usage recorded after its answer went out) waits to share one transaction
    /// with others. At low traffic this turns one store transaction and one dispatch round per request into one per
    /// window, and the consumers get the window's events together. 0 writes each at once. Not applied to writes a
    /// consumer waits on (inbox records, charges): with a bounded number of messages in flight, a window there would
    /// cap a consumer's throughput at its concurrency per window.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:01")]
    public TimeSpan GroupWindow { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Events published per round before the dispatcher looks again.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 100;

    /// <summary>Test switch: publish every event twice with the same message id, to prove consumers are idempotent.</summary>
    public bool DuplicateDeliveryForTests { get; set; }
}
