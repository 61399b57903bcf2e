using LLMTune.Platform.Storage;

namespace LLMTune.Batch.Features.Batches;

public enum BatchStatus
{
    Queued,
    Processing,
    Completed,
    CompletedWithErrors,
    Failed,
    Cancelled,
}

/// <summary>The API a batch was submitted through: the seed's native batch or OpenAI's Batch API (one pipeline, two formats).</summary>
public enum BatchFormat
{
    Native,
    OpenAi,
}

public enum BatchItemStatus
{
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>
/// A batch: the truth about it lives here and in its <see cref="BatchItem"/>s (DESIGN.md "Where truth lives").
/// The counts are derived from the items (never decrease) and the final status is set once, by the write that sees
/// every item finished.
/// </summary>
public sealed class InferenceBatch : IDocument
{
    public const string Collection = "batches";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string KeyId { get; set; } = "";
    public string ModelId { get; set; } = "";
    public string? WebhookUrl { get; set; }
    public BatchFormat Format { get; set; }

    /// <summary>OpenAI batches: the endpoint every line calls (<c>/v1/chat/completions</c> or <c>/v1/completions</c>).</summary>
    public string? Endpoint { get; set; }

    public string? InputFileId { get; set; }
    public string? CompletionWindow { get; set; }

    /// <summary>OpenAI batches: the caller's <c>metadata</c> object, as JSON.</summary>
    public string? MetadataJson { get; set; }

    public BatchStatus Status { get; set; }
    public int Total { get; set; }
    public int Succeeded { get; set; }
    public int Failed { get; set; }
    public int Cancelled { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
    public DateTime? CancelledAt { get; set; }

    /// <summary>BatchCompleted was published (set after publishing, so a crash in between publishes it again).</summary>
    public bool CompletionAnnounced { get; set; }

    public static bool IsFinal(BatchStatus status) => status is BatchStatus.Completed or BatchStatus.CompletedWithErrors or BatchStatus.Failed or BatchStatus.Cancelled;
}

/// <summary>
/// One request of a batch and, once finished, its result. It leaves <see cref="BatchItemStatus.Pending"/> exactly once
/// (a conditional write), so a result that arrives twice is recorded once. <see cref="DueAt"/> is when it is requested
/// (again) if no result has come.
/// </summary>
public sealed class BatchItem : IDocument
{
    public const string Collection = "batch_items";

    /// <summary>The batch id and the item's position: unique, and the key the inference service deduplicates on.</summary>
    public string Id { get; set; } = "";

    public long Version { get; set; }
    public string BatchId { get; set; } = "";
    public string WorkspaceId { get; set; } = "";
    public string KeyId { get; set; } = "";
    public string ModelId { get; set; } = "";
    public int Index { get; set; }

    /// <summary>The caller's id for this request (<c>requests[].id</c>, or an OpenAI line's <c>custom_id</c>).</summary>
    public string RequestId { get; set; } = "";

    public string Prompt { get; set; } = "";
    public double? Temperature { get; set; }
    public int? MaxTokens { get; set; }
    public double? TopP { get; set; }
    public string? MetadataJson { get; set; }

    /// <summary>An OpenAI batch line's <c>url</c> and <c>body</c> (the native fields above stay empty).</summary>
    public string? OpenAiUrl { get; set; }
    public string? OpenAiBody { get; set; }

    public BatchItemStatus Status { get; set; }
    public int Attempts { get; set; }
    public DateTime DueAt { get; set; }

    public string? Model { get; set; }
    public string? Text { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public long LatencyMs { get; set; }
    public string? FinishReason { get; set; }
    public int? ErrorStatus { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public string? ErrorParam { get; set; }

    /// <summary>An OpenAI item's answer: the endpoint's JSON response body.</summary>
    public string? ResponseBody { get; set; }

    public DateTime? CompletedAt { get; set; }

    public static string KeyFor(string batchId, int index) => $"{batchId}-{index:D4}";

    /// <summary>The batch's item at <paramref name="index"/>, pending and due at once; the format's own fields are set by its caller.</summary>
    public static BatchItem PendingOf(InferenceBatch batch, int index, string requestId) => new()
    {
        Id = KeyFor(batch.Id, index),
        BatchId = batch.Id,
        WorkspaceId = batch.WorkspaceId,
        KeyId = batch.KeyId,
        ModelId = batch.ModelId,
        Index = index,
        RequestId = requestId,
        Status = BatchItemStatus.Pending,
        DueAt = batch.CreatedAt,
    };
}
