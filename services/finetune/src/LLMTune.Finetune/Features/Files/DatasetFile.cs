using LLMTune.Platform.Storage;

namespace LLMTune.Finetune.Features.Files;

/// <summary>An uploaded file; its bytes live in the artifact store under <c>files/{Id}</c>.</summary>
public sealed class DatasetFile : IDocument
{
    public const string Collection = "finetune_files";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string Filename { get; set; } = "";
    public string Purpose { get; set; } = "";
    public long Bytes { get; set; }
    public DateTime CreatedAt { get; set; }
}
