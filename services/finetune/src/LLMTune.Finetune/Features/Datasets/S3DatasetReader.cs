using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
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
