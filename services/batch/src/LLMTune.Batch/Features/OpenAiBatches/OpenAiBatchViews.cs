using System.Text.Json;
using System.Text.Json.Serialization;
using LLMTune.Batch.Features.Batches;

namespace LLMTune.Batch.Features.OpenAiBatches;

/// <summary>OpenAI's <c>POST /v1/batches</c> body (snake_case, as OpenAI names it).</summary>
public sealed record CreateOpenAiBatchRequest(
    [property: JsonPropertyName("input_file_id")] string? InputFileId,
    [property: JsonPropertyName("endpoint")] string? Endpoint,
    [property: JsonPropertyName("completion_window")] string? CompletionWindow,
    [property: JsonPropertyName("metadata")] JsonElement? Metadata);

public sealed record OpenAiRequestCounts(
    [property: JsonPropertyName("total")] int Total,
    [property: JsonPropertyName("completed")] int Completed,
    [property: JsonPropertyName("failed")] int Failed);

/// <summary>OpenAI's batch object; times are Unix seconds, null until they happen.</summary>
public sealed record OpenAiBatchView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("object")] string Object,
    [property: JsonPropertyName("endpoint")] string Endpoint,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("errors")] object? Errors,
    [property: JsonPropertyName("input_file_id")] string InputFileId,
    [property: JsonPropertyName("completion_window")] string CompletionWindow,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("output_file_id")] string? OutputFileId,
    [property: JsonPropertyName("error_file_id")] string? ErrorFileId,
    [property: JsonPropertyName("created_at")] long CreatedAt,
    [property: JsonPropertyName("in_progress_at")] long? InProgressAt,
    [property: JsonPropertyName("expires_at")] long ExpiresAt,
    [property: JsonPropertyName("finalizing_at")] long? FinalizingAt,
    [property: JsonPropertyName("completed_at")] long? CompletedAt,
    [property: JsonPropertyName("failed_at")] long? FailedAt,
    [property: JsonPropertyName("expired_at")] long? ExpiredAt,
    [property: JsonPropertyName("cancelling_at")] long? CancellingAt,
    [property: JsonPropertyName("cancelled_at")] long? CancelledAt,
    [property: JsonPropertyName("request_counts")] OpenAiRequestCounts RequestCounts,
    [property: JsonPropertyName("metadata")] JsonElement? Metadata)
{
    /// <summary>
    /// The batch in OpenAI's terms: queued is <c>validating</c>, running <c>in_progress</c>, and a batch whose every item
    /// ended is <c>completed</c> even when items failed (they are in the error file, as OpenAI does).
    /// </summary>
    public static OpenAiBatchView From(InferenceBatch batch, int succeeded, int failed)
    {
        var ended = batch.Status is BatchStatus.Completed or BatchStatus.CompletedWithErrors or BatchStatus.Failed;
        var status = batch.Status switch
        {
            BatchStatus.Queued => "validating",
            BatchStatus.Processing => "in_progress",
            BatchStatus.Cancelled => "cancelled",
            _ => "completed",
        };
        var final = InferenceBatch.IsFinal(batch.Status);
        return new OpenAiBatchView(
            batch.Id, "batch", batch.Endpoint ?? "", batch.ModelId, null, batch.InputFileId ?? "", batch.CompletionWindow ?? OpenAiBatchSubmission.CompletionWindow,
            status,
            final && succeeded > 0 ? OpenAiBatchFiles.OutputFileId(batch.Id) : null,
            final && failed > 0 ? OpenAiBatchFiles.ErrorFileId(batch.Id) : null,
            Unix(batch.CreatedAt)!.Value, Unix(batch.StartedAt), Unix(batch.CreatedAt.AddHours(24))!.Value,
            ended ? Unix(batch.CompletedAt) : null, ended ? Unix(batch.CompletedAt) : null, null, null,
            batch.Status == BatchStatus.Cancelled ? Unix(batch.CancelledAt) : null, Unix(batch.CancelledAt),
            new OpenAiRequestCounts(batch.Total, succeeded, failed),
            batch.MetadataJson is null ? null : JsonDocument.Parse(batch.MetadataJson).RootElement.Clone());
    }

    private static long? Unix(DateTime? time) => time is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)).ToUnixTimeSeconds() : null;
}

/// <summary>OpenAI's list shape, newest first, paged with <c>after</c> (the last id of the previous page).</summary>
public sealed record OpenAiBatchList(
    [property: JsonPropertyName("object")] string Object,
    [property: JsonPropertyName("data")] IReadOnlyList<OpenAiBatchView> Data,
    [property: JsonPropertyName("first_id")] string? FirstId,
    [property: JsonPropertyName("last_id")] string? LastId,
    [property: JsonPropertyName("has_more")] bool HasMore);

/// <summary>One line of an output or error file: <c>{id, custom_id, response: {status_code, request_id, body}, error}</c>.</summary>
public sealed record OpenAiOutputLine(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("custom_id")] string CustomId,
    [property: JsonPropertyName("response")] OpenAiOutputResponse? Response,
    [property: JsonPropertyName("error")] OpenAiLineError? Error);

public sealed record OpenAiOutputResponse(
    [property: JsonPropertyName("status_code")] int StatusCode,
    [property: JsonPropertyName("request_id")] string RequestId,
    [property: JsonPropertyName("body")] JsonElement Body);

public sealed record OpenAiLineError(
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("message")] string Message);
