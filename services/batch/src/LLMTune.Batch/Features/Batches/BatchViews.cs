using System.Text.Json;
using System.Text.Json.Serialization;

namespace LLMTune.Batch.Features.Batches;

/// <summary>The seed's request: <c>{modelId, requests: [{id, prompt, temperature?, maxTokens?, topP?, metadata?}], webhookUrl?}</c>.</summary>
public sealed record CreateBatchRequest(string? ModelId, List<BatchRequestItem?>? Requests, string? WebhookUrl);

public sealed record BatchRequestItem(string? Id, string? Prompt, double? Temperature, int? MaxTokens, double? TopP, JsonElement? Metadata);

/// <summary>The seed's 202 answer, plus the requests that were not accepted.</summary>
public sealed record BatchAccepted(string BatchId, string Status, BatchSummary Summary, IReadOnlyList<RejectedRequest> Rejected);

public sealed record BatchSummary(int Total, int Accepted);

public sealed record RejectedRequest(string? Id, BatchItemError Error);

/// <summary>An item's error in the API's error shape (without the request id: it is not a response).</summary>
public sealed record BatchItemError(string Message, string Type, string? Param, string? Code);

public sealed record BatchCounts(int Total, int Succeeded, int Failed, int Pending, int Cancelled);

public sealed record BatchItemResult(string Id, string Status, string? Text, int? Tokens, long? Latency, JsonElement? Metadata, BatchItemError? Error);

public sealed record BatchView(
    string BatchId,
    string ModelId,
    string Status,
    BatchCounts Counts,
    double Progress,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    DateTime? CancelledAt,
    string? WebhookUrl,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<BatchItemResult>? Results)
{
    public static string StatusName(BatchStatus status) => status switch
    {
        BatchStatus.Queued => "queued",
        BatchStatus.Processing => "processing",
        BatchStatus.Completed => "completed",
        BatchStatus.CompletedWithErrors => "completed_with_errors",
        BatchStatus.Failed => "failed",
        BatchStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    /// <summary>A list entry: the stored counts, no results.</summary>
    public static BatchView Summary(InferenceBatch batch) =>
        From(batch, batch.Succeeded, batch.Failed, batch.Cancelled, null);

    /// <summary>The full view: counts taken from the items themselves, and every finished item's result so far.</summary>
    public static BatchView Detail(InferenceBatch batch, IReadOnlyList<BatchItem> items) => From(
        batch,
        items.Count(i => i.Status == BatchItemStatus.Succeeded),
        items.Count(i => i.Status == BatchItemStatus.Failed),
        items.Count(i => i.Status == BatchItemStatus.Cancelled),
        items.Where(IsFinished).Select(Result).ToList());

    private static BatchView From(InferenceBatch batch, int succeeded, int failed, int cancelled, IReadOnlyList<BatchItemResult>? results)
    {
        var done = succeeded + failed + cancelled;
        var progress = batch.Total == 0 ? 100 : Math.Round(100.0 * done / batch.Total, 1);
        return new BatchView(batch.Id, batch.ModelId, StatusName(batch.Status),
            new BatchCounts(batch.Total, succeeded, failed, Math.Max(0, batch.Total - done), cancelled), progress,
            batch.CreatedAt, batch.StartedAt, batch.CompletedAt, batch.CancelledAt, batch.WebhookUrl, results);
    }

    public static bool IsFinished(BatchItem item) => item.Status is BatchItemStatus.Succeeded or BatchItemStatus.Failed;

    /// <summary>One item as the seed's inference response (<c>text</c>, <c>tokens</c>, <c>latency</c>, <c>metadata</c>) or its error.</summary>
    public static BatchItemResult Result(BatchItem item)
    {
        var metadata = item.MetadataJson is null ? (JsonElement?)null : JsonDocument.Parse(item.MetadataJson).RootElement.Clone();
        return item.Status == BatchItemStatus.Succeeded
            ? new BatchItemResult(item.RequestId, "succeeded", item.Text, item.CompletionTokens, item.LatencyMs, metadata, null)
            : new BatchItemResult(item.RequestId, "failed", null, null, null, metadata,
                new BatchItemError(item.ErrorMessage ?? "The request failed.", Platform.Errors.ApiErrors.TypeFor(item.ErrorStatus ?? 500), item.ErrorParam, item.ErrorCode));
    }
}
