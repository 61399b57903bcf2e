namespace LLMTune.Contracts;

/// <summary>The owner removed a deployed fine-tune: every inference replica takes it out of service.</summary>
public sealed record ModelRemoved(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string ModelId) : IWorkspaceEvent;
