using LLMTune.Platform.Storage;

namespace LLMTune.Inference.Features.Deployment;

/// <summary>A fine-tune deployed for one workspace: the record a restarted (or another) replica loads it from.</summary>
public sealed class DeployedModel : IDocument
{
    public const string Collection = "inference_deployments";
    public const string LoraKind = "lora";
    public const string FullKind = "full";

    /// <summary>The model id, <c>ft:&lt;baseModel&gt;:&lt;workspaceId&gt;:&lt;jobId&gt;</c>.</summary>
    public string Id { get; set; } = "";

    public long Version { get; set; }

    public string WorkspaceId { get; set; } = "";

    public string JobId { get; set; } = "";

    public string BaseModel { get; set; } = "";

    /// <summary>Where the trained file is, as the artifact store names it (<c>file:///…</c> or <c>s3://…</c>; from <c>TrainingCompleted</c>).</summary>
    public string ArtifactLocation { get; set; } = "";

    /// <summary><c>lora</c> or <c>full</c>.</summary>
    public string ArtifactKind { get; set; } = "";

    public DateTime CreatedAt { get; set; }

    /// <summary>Set when the owner removed it: it is never loaded again, even if the training event is redelivered.</summary>
    public DateTime? RemovedAt { get; set; }


    public static string ModelIdFor(string baseModel, string workspaceId, string jobId) => $"ft:{baseModel}:{workspaceId}:{jobId}";
}
