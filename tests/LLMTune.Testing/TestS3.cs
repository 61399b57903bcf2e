using LLMTune.Platform.Artifacts;
using Xunit;

namespace LLMTune.Testing;

/// <summary>The S3-compatible server the tests use (test.sh starts one and exports its address).</summary>
public static class TestS3
{
    public const string UrlVariable = "LLMTUNE_TEST_S3";

    /// <summary>A fresh bucket on the test server, or <see cref="Assert.Skip(string)"/> when there is none.</summary>
    public static async Task<ArtifactS3Options> NewBucketAsync(CancellationToken ct)
    {
        var url = Environment.GetEnvironmentVariable(UrlVariable);
        if (string.IsNullOrWhiteSpace(url))
        {
            Assert.Skip($"S3 tests skipped: set {UrlVariable} to an S3-compatible endpoint (./test.sh starts one).");
        }

        var options = new ArtifactS3Options
        {
            ServiceUrl = url,
            Region = "us-east-1",
            ForcePathStyle = true,
            AccessKey = Environment.GetEnvironmentVariable(UrlVariable + "_ACCESS_KEY") ?? "S3RVER",
            SecretKey = Environment.GetEnvironmentVariable(UrlVariable + "_SECRET_KEY") ?? "S3RVER",
            Bucket = "test-" + Guid.NewGuid().ToString("N")[..16],
            CachePath = Directory.CreateTempSubdirectory("llmtune-s3-cache-").FullName,
        };
        using var client = options.CreateClient();
        await client.PutBucketAsync(options.Bucket, ct);
        return options;
    }

    /// <summary>Host settings that reach the same server under <paramref name="section"/> (e.g. <c>Artifacts:S3</c> or <c>Finetune:S3</c>).</summary>
    public static Dictionary<string, string?> Settings(ArtifactS3Options options, string section)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"{section}:ServiceUrl"] = options.ServiceUrl,
            [$"{section}:Region"] = options.Region,
            [$"{section}:AccessKey"] = options.AccessKey,
            [$"{section}:SecretKey"] = options.SecretKey,
            [$"{section}:ForcePathStyle"] = "true",
        };
        if (section.StartsWith("Artifacts", StringComparison.Ordinal))
        {
            settings[$"{section}:Bucket"] = options.Bucket;
        }

        return settings;
    }

    /// <summary>Puts a text object in the bucket.</summary>
    public static async Task PutAsync(ArtifactS3Options options, string key, string content, CancellationToken ct)
    {
        using var client = options.CreateClient();
        await client.PutObjectAsync(new Amazon.S3.Model.PutObjectRequest { BucketName = options.Bucket, Key = key, ContentBody = content, UseChunkEncoding = false }, ct);
    }
}
