using System.IO.Pipelines;
using System.Net;
using Google;
using Google.Apis.Auth.OAuth2;
using Google.Cloud.Storage.V1;
using LLMTune.Platform.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>
/// Reads <c>gs://</c> datasets with Google's client: from storage.googleapis.com or the GCS-compatible
/// <c>Finetune:Gcs:ServiceUrl</c>, with the credentials of <c>Finetune:Gcs</c> or the environment.
/// </summary>
public sealed class GcsDatasetReader(IOptions<FinetuneOptions> options)
{
    public async Task<long> CopyAsync(string bucket, string objectName, IArtifactStore store, string destination, CancellationToken ct)
    {
        var settings = options.Value;
        var maxBytes = settings.RemoteDatasets.MaxBytes;
        try
        {
            using var client = await CreateClientAsync(settings.Gcs, ct).ConfigureAwait(false);
            var metadata = await client.GetObjectAsync(bucket, objectName, cancellationToken: ct).ConfigureAwait(false);
            if (metadata.Size is { } size && size > (ulong)maxBytes)
            {
                throw new DatasetException(DatasetException.TooLarge, $"gs://{bucket}/{objectName} is {size} bytes; the limit is {maxBytes}.");
            }

            // The client writes into a stream; a pipe lets the store read (and enforce the limit) as the bytes arrive.
            var pipe = new Pipe();
            using var downloadCancellation = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // The generation whose size was checked, so an object replaced in between is not read instead.
            var download = DownloadIntoAsync(client, bucket, objectName, new DownloadObjectOptions { Generation = metadata.Generation }, pipe.Writer, downloadCancellation.Token);
            long stored;
            try
            {
                await using var reader = pipe.Reader.AsStream();
                stored = await store.SaveAsync(destination, reader, maxBytes, ct).ConfigureAwait(false);
            }
            catch
            {
                // The store stopped reading (over the limit, a failed write): end the transfer rather than let it
                // drain the rest of the object into a pipe nobody reads.
                await downloadCancellation.CancelAsync().ConfigureAwait(false);
                await download.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                throw;
            }

            await download.ConfigureAwait(false);
            return stored;
        }
        catch (GoogleApiException e) when (e.HttpStatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            throw new DatasetException(DatasetException.Unavailable,
                $"gs://{bucket}/{objectName} cannot be read ({(e.HttpStatusCode == HttpStatusCode.NotFound ? "no such object" : "access denied")}).", e);
        }
        catch (Exception e) when (e is GoogleApiException or InvalidOperationException or HttpRequestException or IOException)
        {
            throw new DatasetException(DatasetException.Unavailable, $"gs://{bucket}/{objectName} cannot be read: {e.Message}", e);
        }
        catch (ArtifactTooLargeException)
        {
            throw new DatasetException(DatasetException.TooLarge, $"gs://{bucket}/{objectName} is larger than the limit of {maxBytes} bytes.");
        }
    }

    /// <summary>The JSON API's base under a configured endpoint (the client adds <c>b/{bucket}/o/{object}</c> to it).</summary>
    public static string? BaseUriOf(string? serviceUrl) =>
        string.IsNullOrWhiteSpace(serviceUrl) ? null : $"{serviceUrl.Trim().TrimEnd('/')}/storage/v1/";

    private static async Task DownloadIntoAsync(StorageClient client, string bucket, string objectName, DownloadObjectOptions downloadOptions, PipeWriter writer, CancellationToken ct)
    {
        // Off the caller's path, so the store starts reading while the client writes.
        await Task.Yield();
        Exception? failure = null;
        try
        {
            await using var destination = writer.AsStream(leaveOpen: true);
            await client.DownloadObjectAsync(bucket, objectName, destination, downloadOptions, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            // The reader sees the end of the object, or the download's own error.
            await writer.CompleteAsync(failure).ConfigureAwait(false);
        }
    }

    private static async Task<StorageClient> CreateClientAsync(GcsSourceOptions gcs, CancellationToken ct)
    {
        var builder = new StorageClientBuilder
        {
            BaseUri = BaseUriOf(gcs.ServiceUrl),
            UnauthenticatedAccess = gcs.Anonymous,
        };
        if (!gcs.Anonymous && !string.IsNullOrWhiteSpace(gcs.CredentialsPath))
        {
            // Only a service-account key is accepted from the file; the builder adds the storage scopes to it.
            builder.GoogleCredential = (await CredentialFactory.FromFileAsync<ServiceAccountCredential>(gcs.CredentialsPath, ct).ConfigureAwait(false)).ToGoogleCredential();
        }

        // Without either, the builder uses Google's application default credentials.
        return await builder.BuildAsync(ct).ConfigureAwait(false);
    }
}
