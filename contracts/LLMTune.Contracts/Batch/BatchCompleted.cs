namespace LLMTune.Contracts;

public sealed record BatchCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ModelId,
    int Succeeded,
    int Failed,
    string? WebhookUrl) : IWorkspaceEvent;
