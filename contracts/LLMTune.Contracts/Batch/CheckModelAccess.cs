namespace LLMTune.Contracts;

/// <summary>A request from the batch service to the inference service: may this workspace use this model? Answered by <see cref="ModelAccessChecked"/>.</summary>
public sealed record CheckModelAccess(string WorkspaceId, string ModelId);
