namespace LLMTune.Contracts;

// Events announce changes that are already recorded in the owning service's store (docs/architecture.md, "Where truth lives").
// Every event carries the workspace it concerns, the request or job id that caused it (CorrelationId) and when it happened.
// Consumers must be idempotent: the same event may arrive more than once.

/// <summary>Common envelope fields of every LLMTune event.</summary>
public interface IWorkspaceEvent
{
    string WorkspaceId { get; }
    string CorrelationId { get; }
    DateTimeOffset Timestamp { get; }
}
