namespace LLMTune.Finetune.Features.Artifacts;

/// <summary>The artifact store as a local folder (the single-process default, or a shared volume).</summary>
public sealed class LocalArtifactStore(string root) : IArtifactStore
{
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The file behind a key; keys never escape the root.</summary>
    public string PathOf(string key)
    {
        var path = Path.GetFullPath(Path.Combine(Root, key));
        return path.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || path == Root
            ? path
            : throw new ArgumentException($"Artifact key '{key}' leaves the store.", nameof(key));
    }

    public async Task<long> SaveAsync(string key, Stream content, long maxBytes, CancellationToken ct)
    {
        var path = PathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            long length;
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                length = await LimitedCopy.CopyAsync(content, file, maxBytes, ct).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
            }

            // Readers see the whole object or none of it.
            File.Move(temporary, path, overwrite: true);
            return length;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public Task<Stream?> OpenReadAsync(string key, CancellationToken ct)
    {
        var path = PathOf(key);
        return Task.FromResult<Stream?>(File.Exists(path)
            ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 81920, useAsync: true)
            : null);
    }

    public Task<bool> ExistsAsync(string key, CancellationToken ct) => Task.FromResult(File.Exists(PathOf(key)));

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        var path = PathOf(key.TrimEnd('/'));
        if (key.EndsWith('/'))
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        else
        {
            File.Delete(path);
        }

        return Task.CompletedTask;
    }
}
