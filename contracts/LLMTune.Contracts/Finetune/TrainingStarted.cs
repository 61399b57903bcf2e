namespace LLMTune.Contracts;

// WebhookUrl on training events: the job's own callback URL (POST /v1/fine-tune "webhookUrl"), for the webhooks service.
public sealed record TrainingStarted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    int TotalEpochs,
    string? WebhookUrl = null) : IWorkspaceEvent;
