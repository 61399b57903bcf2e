using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Upstream;

namespace LLMTune.Inference.Features.Models;

/// <summary>A model id this service answers for.</summary>
public abstract class ServedModel
{
    public required string Id { get; init; }

    /// <summary>The only workspace that may see and call it (deployed fine-tunes); null for everyone.</summary>
    public string? WorkspaceId { get; init; }

    public required DateTimeOffset Created { get; init; }

    /// <summary>OpenAI's <c>owned_by</c>: "llmtune" for configured models, the workspace for fine-tunes.</summary>
    public string OwnedBy => WorkspaceId ?? "llmtune";

    public IReadOnlyList<string> Fallbacks { get; init; } = [];

    public bool VisibleTo(string workspaceId) => WorkspaceId is null || WorkspaceId == workspaceId;
}

/// <summary>A GGUF model (or a LoRA variant of one) decoded in this process.</summary>
public sealed class LocalServedModel : ServedModel
{
    public required LoadedModel Model { get; init; }

    /// <summary>The LoRA variant serving this id; null is the base model.</summary>
    public string? Variant { get; init; }

    /// <summary>The settings it was loaded with, reused for fine-tunes deployed on top of it.</summary>
    public required ModelOptions Settings { get; init; }

    /// <summary>The id the engine knows the weights by (the base model's for a variant).</summary>
    public string EngineId => Model.Id;
}

/// <summary>A model answered by an OpenAI-compatible server elsewhere.</summary>
public sealed class UpstreamServedModel : ServedModel
{
    public required UpstreamEndpoint Endpoint { get; init; }
}
