namespace LLMTune.Contracts;

public sealed record TrainingCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    string ArtifactUri,
    string ArtifactKind,
    string? WebhookUrl = null) : IWorkspaceEvent;
