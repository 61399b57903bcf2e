namespace LLMTune.Contracts;

/// <summary>
/// A fine-tune finished and its weights are stored. <c>TrainedTokens</c>: the tokens the optimizer trained on in the run
/// that completed the job (every epoch counted), which billing charges per trained token, once per job.
/// </summary>
public sealed record TrainingCompleted(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string JobId,
    string BaseModel,
    string ArtifactUri,
    string ArtifactKind,
    string? WebhookUrl = null,
    long TrainedTokens = 0) : IWorkspaceEvent;
