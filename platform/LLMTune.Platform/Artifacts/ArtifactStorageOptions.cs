using Amazon.Runtime;
using Amazon.S3;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Artifacts;

public enum ArtifactProvider
{
    Local,
    S3,
}

/// <summary>Configuration section <c>Artifacts</c>: where uploads, checkpoints and trained models are kept.</summary>
public sealed class ArtifactStorageOptions
{
    public const string Section = "Artifacts";

    /// <summary><c>Artifacts:Provider</c>: <c>Local</c> (a folder, the default) or <c>S3</c> (any S3-compatible bucket).</summary>
    public ArtifactProvider Provider { get; set; } = ArtifactProvider.Local;

    /// <summary><c>Artifacts:LocalPath</c>: the folder of the local store (a shared volume when services run apart).</summary>
    public string LocalPath { get; set; } = "./data/artifacts";

    public ArtifactS3Options S3 { get; set; } = new();
}

/// <summary>How to reach an S3-compatible service (AWS, MinIO, Ceph, R2, …).</summary>
public class S3ConnectionOptions
{
    /// <summary>An S3-compatible endpoint; null uses AWS.</summary>
    public string? ServiceUrl { get; set; }

    public string? Region { get; set; }

    /// <summary>Static credentials; when absent the AWS SDK's default chain (environment, profile, IAM role) is used.</summary>
    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }

    /// <summary>Path-style addressing, which most S3-compatible stores need.</summary>
    public bool ForcePathStyle { get; set; }

    public AmazonS3Client CreateClient()
    {
        var config = new AmazonS3Config { ForcePathStyle = ForcePathStyle };
        if (!string.IsNullOrWhiteSpace(ServiceUrl))
        {
            config.ServiceURL = ServiceUrl;
            // Stores other than AWS often reject the SDK's newer default checksum headers; send them only when required.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }

        if (!string.IsNullOrWhiteSpace(Region))
        {
            // With an endpoint of its own the region only signs requests; a RegionEndpoint would replace the endpoint.
            if (string.IsNullOrWhiteSpace(ServiceUrl))
            {
                config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(Region);
            }
            else
            {
                config.AuthenticationRegion = Region;
            }
        }

        return string.IsNullOrEmpty(AccessKey)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(AccessKey, SecretKey), config);
    }

    /// <summary>Problems with these settings, each naming its setting under <paramref name="section"/>.</summary>
    public IEnumerable<string> Problems(string section)
    {
        if (!string.IsNullOrWhiteSpace(ServiceUrl)
            && (!Uri.TryCreate(ServiceUrl, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)))
        {
            yield return $"{section}:ServiceUrl must be an absolute http(s) URL (was '{ServiceUrl}').";
        }

        if (string.IsNullOrEmpty(AccessKey) != string.IsNullOrEmpty(SecretKey))
        {
            yield return $"{section}:AccessKey and {section}:SecretKey must be set together.";
        }
    }
}

public sealed class ArtifactS3Options : S3ConnectionOptions
{
    public string? Bucket { get; set; }

    /// <summary>Keys are stored under this prefix (e.g. <c>llmtune/</c>), so one bucket can hold several installations.</summary>
    public string? Prefix { get; set; }

    /// <summary>Objects larger than this go up in parts of this size (S3 needs at least 5 MiB, and at most 10,000 parts).</summary>
    public long PartSize { get; set; } = 64L * 1024 * 1024;

    /// <summary>Where downloaded artifacts are cached for code that needs a local file (model loading).</summary>
    public string CachePath { get; set; } = "./data/artifact-cache";
}

internal sealed class ArtifactStorageOptionsValidator : IValidateOptions<ArtifactStorageOptions>
{
    public ValidateOptionsResult Validate(string? name, ArtifactStorageOptions options)
    {
        var problems = new List<string>();
        if (!Enum.IsDefined(options.Provider))
        {
            problems.Add($"Artifacts:Provider must be Local or S3 (was '{options.Provider}').");
        }
        else if (options.Provider == ArtifactProvider.Local && string.IsNullOrWhiteSpace(options.LocalPath))
        {
            problems.Add("Artifacts:LocalPath must name a folder.");
        }
        else if (options.Provider == ArtifactProvider.S3)
        {
            var s3 = options.S3;
            if (string.IsNullOrWhiteSpace(s3.Bucket))
            {
                problems.Add("Artifacts:S3:Bucket is required when Artifacts:Provider is S3.");
            }

            if (s3.PartSize < 5L * 1024 * 1024)
            {
                problems.Add("Artifacts:S3:PartSize must be at least 5 MiB (5242880).");
            }

            if (string.IsNullOrWhiteSpace(s3.CachePath))
            {
                problems.Add("Artifacts:S3:CachePath must name a folder.");
            }

            if (s3.Prefix is { Length: > 0 } prefix && (prefix.StartsWith('/') || prefix.Split('/', StringSplitOptions.RemoveEmptyEntries).Any(s => s is "." or "..")))
            {
                problems.Add($"Artifacts:S3:Prefix must be a relative key prefix (was '{prefix}').");
            }

            problems.AddRange(s3.Problems("Artifacts:S3"));
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
