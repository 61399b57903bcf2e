namespace LLMTune.Contracts;

public sealed record ModelDeployed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string ModelId,
    string BaseModel,
    string? JobId) : IWorkspaceEvent;
