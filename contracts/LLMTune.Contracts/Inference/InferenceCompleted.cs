namespace LLMTune.Contracts;

/// <summary>
/// One metered inference call. <c>CorrelationId</c> is the request id (the client's <c>x-request-id</c> when it sent
/// one: for correlation only, a client may reuse it); <c>UsageId</c> is the server's id of this call, unique per request
/// (a batch item's key for batch items), which charges and token reservations are keyed by. <c>BatchId</c> is set when
/// it ran as an item of that batch.
/// </summary>
public sealed record InferenceCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string KeyId,
    string Model,
    int PromptTokens,
    int CompletionTokens,
    long LatencyMs,
    string FinishReason,
    bool Streamed,
    string UsageId,
    string? BatchId = null) : IWorkspaceEvent;
