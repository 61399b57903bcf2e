namespace LLMTune.Contracts;

public sealed record BatchQueued(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ModelId,
    int RequestCount) : IWorkspaceEvent;
