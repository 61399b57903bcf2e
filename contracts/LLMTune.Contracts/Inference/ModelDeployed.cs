namespace LLMTune.Contracts;

// WebhookUrl: the fine-tune job's callback URL (from TrainingCompleted), so the webhooks service needs no record of jobs.
public sealed record ModelDeployed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string ModelId,
    string BaseModel,
    string? JobId,
    string? WebhookUrl = null) : IWorkspaceEvent;
