namespace LLMTune.Platform.Artifacts;

/// <summary>The artifact store as a local folder (the single-process default, or a volume shared by the services).</summary>
public sealed class LocalArtifactStore(string root) : IArtifactStore
{
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The file behind a key.</summary>
    public string PathOf(string key) => Path.Combine(Root, ArtifactKey.Validate(key).Replace('/', Path.DirectorySeparatorChar));

    public Task<long> SaveAsync(string key, Stream content, long maxBytes, CancellationToken ct) =>
        LimitedCopy.WriteFileAtomicallyAsync(PathOf(key), content, maxBytes, ct);

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
        else if (File.Exists(path))
        {
            File.Delete(path);
        }

        return Task.CompletedTask;
    }

    public string LocationOf(string key) => new Uri(PathOf(key)).AbsoluteUri;

    public string? KeyOf(string location)
    {
        if (!Uri.TryCreate(location, UriKind.Absolute, out var uri) || !uri.IsFile)
        {
            return null;
        }

        var path = Path.GetFullPath(uri.LocalPath);
        return path.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? path[(Root.Length + 1)..].Replace(Path.DirectorySeparatorChar, '/')
            : null;
    }

    public Task<string?> GetLocalFileAsync(string key, CancellationToken ct)
    {
        var path = PathOf(key);
        return Task.FromResult(File.Exists(path) ? path : null);
    }
}
