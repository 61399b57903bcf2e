namespace LLMTune.Contracts;

public sealed record TrainingQueued(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel) : IWorkspaceEvent;
