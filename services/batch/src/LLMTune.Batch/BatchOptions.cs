using System.ComponentModel.DataAnnotations;

namespace LLMTune.Batch;

/// <summary>The <c>Batch</c> section: request limits and how the dispatcher re-requests items whose result never came.</summary>
public sealed class BatchOptions
{
    public const string Section = "Batch";

    /// <summary>Requests per <c>POST /v1/batch/inference</c> (the seed's 100).</summary>
    [Range(1, 10_000)]
    public int MaxRequests { get; set; } = 100;

    /// <summary>How often the dispatcher looks for due items when nothing wakes it (a new batch wakes it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a requested item may go without a result before it is requested again.</summary>
    public TimeSpan ResultTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Requests per item; an item still without a result after the last one fails with <c>item_timeout</c>.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 5;

    /// <summary>
    /// Items of one batch requested and not yet answered at a time: batches interleave instead of queueing behind the
    /// biggest, items do not wait in the queue past their result timeout, and a cancel stops all but these.
    /// </summary>
    /// <remarks>At least the batch slots of the model (Inference: MaxConcurrency minus BatchReservedSlots), with room for items on their way.</remarks>
    [Range(1, 1000)]
    public int MaxInFlightPerBatch { get; set; } = 16;

    /// <summary>How often unfinished batches are re-checked (counts, completion, unsent announcements) after a crash.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long to wait for the inference service to confirm the model exists.</summary>
    public TimeSpan ModelCheckTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Request lines per OpenAI batch input file (<c>POST /v1/batches</c>).</summary>
    [Range(1, 50_000)]
    public int MaxFileRequests { get; set; } = 1000;

    /// <summary>Bytes per OpenAI batch input file; the file is handed over in one message by the files' owner.</summary>
    [Range(1, 64L * 1024 * 1024)]
    public long MaxFileBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>How long to wait for the files' owner (the finetune service) to hand over an input file.</summary>
    public TimeSpan FileReadTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
