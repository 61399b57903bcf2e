namespace LLMTune.Contracts;

/// <summary>
/// A batch was cancelled: its pending items will not be requested again, and every inference replica stops the items
/// of the batch it is generating (what they produced so far is metered).
/// </summary>
public sealed record BatchCancelled(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId) : IWorkspaceEvent;
