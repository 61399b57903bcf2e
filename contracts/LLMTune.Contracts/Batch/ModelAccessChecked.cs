namespace LLMTune.Contracts;

/// <summary>The answer to <see cref="CheckModelAccess"/>: whether the model exists for the workspace.</summary>
public sealed record ModelAccessChecked(string WorkspaceId, string ModelId, bool Exists);
