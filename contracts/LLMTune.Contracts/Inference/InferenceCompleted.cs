namespace LLMTune.Contracts;

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
    bool Streamed) : IWorkspaceEvent;
