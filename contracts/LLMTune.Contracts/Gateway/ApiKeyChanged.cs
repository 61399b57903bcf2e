namespace LLMTune.Contracts;

/// <summary>An API key was revoked or rotated: every gateway replica drops its cached verification of it.</summary>
public sealed record ApiKeyChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string KeyId) : IWorkspaceEvent;
