using System.Text.Json.Serialization;

namespace LLMTune.Platform.Http;

/// <summary>
/// A file under <c>/v1/files</c>, in OpenAI's file-object shape (snake_case, <c>created_at</c> in Unix seconds) so that
/// OpenAI SDKs read it. Uploads (finetune) and batch output files (batch) both answer with it.
/// </summary>
public sealed record FileObject(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("created_at")] long CreatedAt,
    [property: JsonPropertyName("filename")] string Filename,
    [property: JsonPropertyName("purpose")] string Purpose)
{
    [JsonPropertyName("object")]
    public string Object => "file";

    /// <summary>Files are usable as soon as they are stored; OpenAI's SDKs wait for <c>processed</c>.</summary>
    [JsonPropertyName("status")]
    public string Status => "processed";

    public static FileObject Of(string id, long bytes, DateTimeOffset createdAt, string filename, string purpose) =>
        new(id, bytes, createdAt.ToUnixTimeSeconds(), filename, purpose);
}
