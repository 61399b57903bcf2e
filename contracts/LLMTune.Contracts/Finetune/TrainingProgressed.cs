namespace LLMTune.Contracts;

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
