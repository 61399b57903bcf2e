namespace LLMTune.Finetune.Features.Artifacts;

/// <summary>
/// Where uploaded files and dataset snapshots live, by key (<c>files/file_…</c>, <c>jobs/job_…/dataset.jsonl</c>).
/// A local folder by default; an S3-compatible bucket is a second implementation of the same four calls.
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
}

public sealed class ArtifactTooLargeException(long limit) : Exception($"The content is larger than {limit} bytes.")
{
    public long Limit { get; } = limit;
}

/// <summary>Keys used by the service, in one place.</summary>
public static class ArtifactKeys
{
    public static string File(string fileId) => $"files/{fileId}";

    public static string JobPrefix(string jobId) => $"jobs/{jobId}/";

    public static string DatasetSnapshot(string jobId) => $"jobs/{jobId}/dataset.jsonl";
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
}
