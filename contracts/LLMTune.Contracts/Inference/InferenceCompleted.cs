namespace LLMTune.Contracts;

/// <summary>One metered inference call; <c>BatchId</c> is set when it ran as an item of that batch.</summary>
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
    string? BatchId = null) : IWorkspaceEvent;
