using LLMTune.Platform.Artifacts;

namespace LLMTune.Platform.Tests.Artifacts;

public sealed class ArtifactStorageOptionsTests
{
    [Fact]
    public void The_local_default_is_valid()
    {
        Assert.True(new ArtifactStorageOptionsValidator().Validate(null, new ArtifactStorageOptions()).Succeeded);
    }

    [Theory]
    [InlineData(null, null, null, null, "Artifacts:S3:Bucket is required")]
    [InlineData("models", "localhost:9000", null, null, "Artifacts:S3:ServiceUrl must be an absolute http(s) URL")]
    [InlineData("models", null, "AKIA", null, "Artifacts:S3:AccessKey and Artifacts:S3:SecretKey must be set together")]
    [InlineData("models", null, null, "../up", "Artifacts:S3:Prefix must be a relative key prefix")]
    public void Bad_s3_settings_are_named(string? bucket, string? serviceUrl, string? accessKey, string? prefix, string expected)
    {
        var options = new ArtifactStorageOptions
        {
            Provider = ArtifactProvider.S3,
            S3 = { Bucket = bucket, ServiceUrl = serviceUrl, AccessKey = accessKey, Prefix = prefix },
        };
        var result = new ArtifactStorageOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(expected, StringComparison.Ordinal));
    }
}
