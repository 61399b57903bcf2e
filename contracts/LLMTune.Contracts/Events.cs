namespace LLMTune.Contracts;

// Events announce changes that are already recorded in the owning service's store (DESIGN.md, "Where truth lives").
// Every event carries the workspace it concerns, the request or job id that caused it (CorrelationId) and when it happened.
// Consumers must be idempotent: the same event may arrive more than once.

/// <summary>Common envelope fields of every LLMTune event.</summary>
public interface IWorkspaceEvent
{
    string WorkspaceId { get; }
    string CorrelationId { get; }
    DateTimeOffset Timestamp { get; }
}

public sealed record InferenceCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string KeyId,
    string Model,
    int PromptTokens,
    int CompletionTokens,
    long LatencyMs,
    string FinishReason,
    bool Streamed) : IWorkspaceEvent;

public sealed record BatchQueued(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ModelId,
    int RequestCount) : IWorkspaceEvent;

public sealed record BatchCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ModelId,
    int Succeeded,
    int Failed,
    string? WebhookUrl) : IWorkspaceEvent;

public sealed record TrainingQueued(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel) : IWorkspaceEvent;

// WebhookUrl on training events: the job's own callback URL (POST /v1/fine-tune "webhookUrl"), for the webhooks service.
public sealed record TrainingStarted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    int TotalEpochs,
    string? WebhookUrl = null) : IWorkspaceEvent;

public sealed record TrainingProgressed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    double Progress,
    int CurrentEpoch,
    int TotalEpochs,
    double? Loss,
    double? EvalLoss,
    double? TokensPerSecond) : IWorkspaceEvent;

public sealed record TrainingCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    string ArtifactUri,
    string ArtifactKind,
    string? WebhookUrl = null) : IWorkspaceEvent;

public sealed record TrainingFailed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    string Code,
    string Reason,
    string? WebhookUrl = null) : IWorkspaceEvent;

public sealed record ModelDeployed(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string ModelId,
    string BaseModel,
    string? JobId) : IWorkspaceEvent;

public sealed record AccountStatusChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string Plan,
    string Status) : IWorkspaceEvent;

/// <summary>An API key was revoked or rotated: every gateway replica drops its cached verification of it.</summary>
public sealed record ApiKeyChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string KeyId) : IWorkspaceEvent;

/// <summary>The owner removed a deployed fine-tune: every inference replica takes it out of service.</summary>
public sealed record ModelRemoved(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string ModelId) : IWorkspaceEvent;
