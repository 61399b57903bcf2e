namespace LLMTune.Contracts;

/// <summary>
/// A request to the service that owns uploaded files (finetune): the content of the workspace's file, if it has the
/// purpose and is at most <paramref name="MaxBytes"/> long. Answered by <see cref="FileRead"/>. The batch service reads
/// the <c>input_file_id</c> of an OpenAI batch this way instead of reading the owner's store.
/// </summary>
public sealed record ReadFile(string WorkspaceId, string FileId, string Purpose, long MaxBytes);
