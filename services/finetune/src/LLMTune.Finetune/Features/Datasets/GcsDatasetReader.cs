using System.Net;
using Google;
using Google.Apis.Auth.OAuth2;
using Google.Cloud.Storage.V1;
using LLMTune.Finetune.Features.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>Reads <c>gs://</c> datasets with Google's client (credentials from <c>Finetune:Gcs</c> or the environment).</summary>
public sealed class GcsDatasetReader(IOptions<FinetuneOptions> options)
{
    public async Task<long> CopyAsync(string bucket, string objectName, IArtifactStore store, string destination, CancellationToken ct)
    {
        var settings = options.Value;
        try
        {
            using var client = await CreateClientAsync(settings.Gcs, ct).ConfigureAwait(false);
            var metadata = await client.GetObjectAsync(bucket, objectName, cancellationToken: ct).ConfigureAwait(false);
            if (metadata.Size is { } size && size > (ulong)settings.RemoteDatasets.MaxBytes)
            {
                throw new DatasetException(DatasetException.TooLarge, $"gs://{bucket}/{objectName} is {size} bytes; the limit is {settings.RemoteDatasets.MaxBytes}.");
            }

            // The client writes into a stream; a pipe lets the store read (and enforce the limit) as it arrives.
            var pipe = new System.IO.Pipelines.Pipe();
            var download = Task.Run(async () =>
            {
                await using var writer = pipe.Writer.AsStream();
                try
                {
                    await client.DownloadObjectAsync(metadata, writer, cancellationToken: ct).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    await pipe.Writer.CompleteAsync(e).ConfigureAwait(false);
                    throw;
                }
            }, ct);
            await using var reader = pipe.Reader.AsStream();
            var stored = await store.SaveAsync(destination, reader, settings.RemoteDatasets.MaxBytes, ct).ConfigureAwait(false);
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
            throw new DatasetException(DatasetException.TooLarge, $"gs://{bucket}/{objectName} is larger than the limit of {settings.RemoteDatasets.MaxBytes} bytes.");
        }
    }

    private static async Task<StorageClient> CreateClientAsync(GcsSourceOptions gcs, CancellationToken ct)
    {
        if (gcs.Anonymous)
        {
            return StorageClient.CreateUnauthenticated();
        }

        if (!string.IsNullOrWhiteSpace(gcs.CredentialsPath))
        {
            var credential = (await CredentialFactory.FromFileAsync<ServiceAccountCredential>(gcs.CredentialsPath, ct).ConfigureAwait(false)).ToGoogleCredential();
            return await StorageClient.CreateAsync(credential).ConfigureAwait(false);
        }

        return await StorageClient.CreateAsync().ConfigureAwait(false);
    }
}
