namespace LLMTune.Finetune.Features.Datasets;

public enum DatasetKind
{
    UploadedFile,
    Https,
    S3,
    Gcs,
}

/// <summary>
/// Where a job's data comes from: an uploaded file (<c>file_…</c> or <c>llmtune://files/file_…</c>), an https URL,
/// <c>s3://bucket/key</c> or <c>gs://bucket/object</c>.
/// </summary>
public sealed record DatasetReference(DatasetKind Kind, string Location, string? Bucket = null, string? ObjectKey = null, Uri? Url = null)
{
    private const string FileScheme = "llmtune://files/";

    /// <summary>Parses a reference; null with a message saying what is accepted when it is not one.</summary>
    public static DatasetReference? TryParse(string? value, out string? problem)
    {
        problem = null;
        var text = value?.Trim() ?? "";
        if (text.StartsWith(FileScheme, StringComparison.Ordinal))
        {
            text = text[FileScheme.Length..];
        }

        if (text.StartsWith("file_", StringComparison.Ordinal) && text.Length > 5 && text.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            return new DatasetReference(DatasetKind.UploadedFile, text);
        }

        if (Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            switch (uri.Scheme)
            {
                case "https" when uri.Host.Length > 0 && string.IsNullOrEmpty(uri.UserInfo):
                    return new DatasetReference(DatasetKind.Https, uri.AbsoluteUri, Url: uri);
                case "s3" or "gs":
                    var bucket = uri.Host;
                    var key = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
                    if (bucket.Length == 0 || key.Length == 0)
                    {
                        problem = $"dataset must look like {uri.Scheme}://bucket/path/to/data.jsonl.";
                        return null;
                    }

                    return new DatasetReference(uri.Scheme == "s3" ? DatasetKind.S3 : DatasetKind.Gcs, text, bucket, key);
                case "http":
                    problem = "dataset URLs must use https.";
                    return null;
            }
        }

        problem = "dataset must be an uploaded file id (file_… or llmtune://files/file_…), an https:// URL, s3://bucket/key or gs://bucket/object.";
        return null;
    }
}
