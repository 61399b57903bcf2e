namespace LLMTune.Contracts;

public sealed record AccountStatusChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string Plan,
    string Status) : IWorkspaceEvent;
