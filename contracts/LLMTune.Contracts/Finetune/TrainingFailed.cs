namespace LLMTune.Contracts;

public sealed record TrainingFailed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    string Code,
    string Reason,
    string? WebhookUrl = null) : IWorkspaceEvent;
