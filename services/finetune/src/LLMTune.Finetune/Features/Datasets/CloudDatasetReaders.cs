using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Google;
using Google.Apis.Auth.OAuth2;
using Google.Cloud.Storage.V1;
using LLMTune.Finetune.Features.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>Reads <c>s3://</c> datasets (AWS or any S3-compatible store configured under <c>Finetune:S3</c>).</summary>
public sealed class S3DatasetReader(IOptions<FinetuneOptions> options)
{
    public async Task<long> CopyAsync(string bucket, string key, IArtifactStore store, string destination, CancellationToken ct)
    {
        var settings = options.Value;
        using var client = CreateClient(settings.S3);
        try
        {
            using var response = await client.GetObjectAsync(new GetObjectRequest { BucketName = bucket, Key = key }, ct).ConfigureAwait(false);
            if (response.ContentLength > settings.RemoteDatasets.MaxBytes)
            {
                throw new DatasetException(DatasetException.TooLarge, $"s3://{bucket}/{key} is {response.ContentLength} bytes; the limit is {settings.RemoteDatasets.MaxBytes}.");
            }

            return await store.SaveAsync(destination, response.ResponseStream, settings.RemoteDatasets.MaxBytes, ct).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            throw new DatasetException(DatasetException.Unavailable,
                $"s3://{bucket}/{key} cannot be read ({(e.StatusCode == HttpStatusCode.NotFound ? "no such object" : "access denied")}).", e);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw new DatasetException(DatasetException.Unavailable, $"s3://{bucket}/{key} cannot be read: {e.Message}", e);
        }
        catch (ArtifactTooLargeException)
        {
            throw new DatasetException(DatasetException.TooLarge, $"s3://{bucket}/{key} is larger than the limit of {settings.RemoteDatasets.MaxBytes} bytes.");
        }
    }

    private static AmazonS3Client CreateClient(S3SourceOptions s3)
    {
        var config = new AmazonS3Config { ForcePathStyle = s3.ForcePathStyle };
        if (!string.IsNullOrWhiteSpace(s3.ServiceUrl))
        {
            config.ServiceURL = s3.ServiceUrl;
        }

        if (!string.IsNullOrWhiteSpace(s3.Region))
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(s3.Region);
        }

        return string.IsNullOrEmpty(s3.AccessKey)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(s3.AccessKey, s3.SecretKey), config);
    }
}

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
