using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using LLMTune.Platform.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>Reads <c>s3://</c> datasets (AWS or any S3-compatible store configured under <c>Finetune:S3</c>).</summary>
public sealed class S3DatasetReader(IOptions<FinetuneOptions> options)
{
    public async Task<long> CopyAsync(string bucket, string key, IArtifactStore store, string destination, CancellationToken ct)
    {
        var settings = options.Value;
        var maxBytes = settings.RemoteDatasets.MaxBytes;
        using var client = settings.S3.CreateClient();
        GetObjectResponse response;
        try
        {
            response = await client.GetObjectAsync(new GetObjectRequest { BucketName = bucket, Key = key }, ct).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            throw new DatasetException(DatasetException.Unavailable,
                $"s3://{bucket}/{key} cannot be read ({(e.StatusCode == HttpStatusCode.NotFound ? (e.ErrorCode == "NoSuchBucket" ? "no such bucket" : "no such object") : "access denied")}).", e);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw new DatasetException(DatasetException.Unavailable, $"s3://{bucket}/{key} cannot be read: {e.Message}", e);
        }

        using (response)
        {
            if (response.ContentLength > maxBytes)
            {
                throw new DatasetException(DatasetException.TooLarge, $"s3://{bucket}/{key} is {response.ContentLength} bytes; the limit is {maxBytes}.");
            }

            // Errors past this point are the artifact store's (or the transfer's), not the user's: they surface as such.
            try
            {
                return await store.SaveAsync(destination, response.ResponseStream, maxBytes, ct).ConfigureAwait(false);
            }
            catch (ArtifactTooLargeException)
            {
                throw new DatasetException(DatasetException.TooLarge, $"s3://{bucket}/{key} is larger than the limit of {maxBytes} bytes.");
            }
        }
    }
}
