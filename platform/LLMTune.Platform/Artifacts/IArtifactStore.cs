namespace LLMTune.Platform.Artifacts;

/// <summary>
/// Where files that outlive a request live: uploads, dataset snapshots, checkpoints, trained models. Keys are
/// relative paths with '/' separators (<c>files/file_…</c>, <c>jobs/job_…/adapter.gguf</c>). A local folder serves
/// one machine (or a shared volume); an S3-compatible bucket serves a cluster. Chosen by <c>Artifacts:Provider</c>.
/// </summary>
public interface IArtifactStore
{
    /// <summary>Stores the stream under the key (replacing any previous object), reading at most <paramref name="maxBytes"/>.</summary>
    /// <returns>The number of bytes stored.</returns>
    /// <exception cref="ArtifactTooLargeException">The stream is longer than <paramref name="maxBytes"/>; nothing is stored.</exception>
    Task<long> SaveAsync(string key, Stream content, long maxBytes, CancellationToken ct);

    /// <summary>Opens the object for reading, or null when it does not exist.</summary>
    Task<Stream?> OpenReadAsync(string key, CancellationToken ct);

    Task<bool> ExistsAsync(string key, CancellationToken ct);

    /// <summary>Deletes the object, or every object under the key when it ends with '/'.</summary>
    Task DeleteAsync(string key, CancellationToken ct);

    /// <summary>How other services name the object in events: <c>file:///…</c> or <c>s3://bucket/prefix/key</c>.</summary>
    string LocationOf(string key);

    /// <summary>The key of a location in this store, or null when the location points elsewhere.</summary>
    string? KeyOf(string location);

    /// <summary>
    /// A local file holding the object, for code that needs a path (llama.cpp loads models from files): the file
    /// itself in the local store, a cached download (refreshed when the object changes) in S3. Null when absent.
    /// </summary>
    Task<string?> GetLocalFileAsync(string key, CancellationToken ct);
}

public sealed class ArtifactTooLargeException(long limit) : Exception($"The content is larger than {limit} bytes.")
{
    public long Limit { get; } = limit;
}

public static class ArtifactKey
{
    /// <summary>Keys are relative, use '/', and never step outside the store ("..", empty or absolute segments).</summary>
    public static string Validate(string key)
    {
        var segments = key.TrimEnd('/').Split('/');
        if (key.Length == 0 || key.StartsWith('/') || key.Contains('\\') || segments.Any(s => s is "" or "." or ".."))
        {
            throw new ArgumentException($"Artifact key '{key}' is not a relative path inside the store.", nameof(key));
        }

        return key;
    }
}

/// <summary>Copies a stream while counting, and stops with <see cref="ArtifactTooLargeException"/> past a limit.</summary>
public static class LimitedCopy
{
    public static async Task<long> CopyAsync(Stream source, Stream destination, long maxBytes, CancellationToken ct)
    {
        var buffer = new byte[81920];
        long total = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            total += read;
            if (total > maxBytes)
            {
                throw new ArtifactTooLargeException(maxBytes);
            }

            await destination.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
        }

        return total;
    }

    /// <summary>Writes the stream to a file beside <paramref name="path"/> and renames it over it, so readers see all of it or none.</summary>
    public static async Task<long> WriteFileAtomicallyAsync(string path, Stream content, long maxBytes, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            long length;
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                length = await CopyAsync(content, file, maxBytes, ct).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
            }

            File.Move(temporary, path, overwrite: true);
            return length;
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
