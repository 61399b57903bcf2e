namespace LLMTune.Contracts;

/// <summary>
/// One batch item's outcome, published by the inference service once the item ran (or could not run): the text and
/// usage, or the error the item failed with (<paramref name="ErrorCode"/> set, in the API's error shape). May arrive
/// more than once for an item; the batch service records the first. <paramref name="ResponseBody"/> is the OpenAI
/// endpoint's JSON answer for an item of an OpenAI batch.
/// </summary>
public sealed record BatchItemCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ItemKey,
    string Model,
    string Text,
    int PromptTokens,
    int CompletionTokens,
    long LatencyMs,
    string FinishReason,
    int? ErrorStatus,
    string? ErrorCode,
    string? ErrorMessage,
    string? ErrorParam,
    string? ResponseBody = null) : IWorkspaceEvent;
