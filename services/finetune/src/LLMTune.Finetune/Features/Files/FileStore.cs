using LLMTune.Platform.Http;
using LLMTune.Platform.Storage;

namespace LLMTune.Finetune.Features.Files;

/// <summary>Uploaded files' records in the document store (their bytes are in the artifact store).</summary>
public sealed class FileStore(IDocumentStore store, TimeProvider time)
{
    private readonly IDocumentCollection<DatasetFile> _files = store.Collection<DatasetFile>(DatasetFile.Collection);

    public Task InsertAsync(DatasetFile file, CancellationToken ct) => _files.InsertAsync(file, ct);

    /// <summary>The file if it belongs to the workspace; another workspace's file is simply not found.</summary>
    public async Task<DatasetFile?> FindAsync(string workspaceId, string fileId, CancellationToken ct) =>
        await _files.GetAsync(fileId, ct) is { } file && file.WorkspaceId == workspaceId ? file : null;

    public Task<Page<DatasetFile>> ListAsync(string workspaceId, PageRequest page, CancellationToken ct) =>
        _files.FindPageAsync(page, time, asOf => f => f.WorkspaceId == workspaceId && f.CreatedAt <= asOf, f => f.CreatedAt, f => f.Id, ct);

    public Task<bool> DeleteAsync(string fileId, CancellationToken ct) => _files.DeleteAsync(fileId, ct);
}
