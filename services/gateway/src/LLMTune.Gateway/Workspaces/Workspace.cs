using LLMTune.Platform.Storage;

namespace LLMTune.Gateway.Workspaces;

/// <summary>A tenant: every key, job, batch and model belongs to exactly one workspace.</summary>
public sealed class Workspace : IDocument
{
    public const string Collection = "workspaces";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string Name { get; set; } = "";

    /// <summary>Plan name (sandbox, growth, scale); plans and their limits come with billing.</summary>
    public string Plan { get; set; } = Plans.Sandbox;

    /// <summary>Grows with every plan change: the order of the <c>WorkspacePlanChanged</c> events.</summary>
    public long PlanSequence { get; set; }

    public DateTime CreatedAt { get; set; }
}

public static class Plans
{
    public const string Sandbox = "sandbox";
    public const string Growth = "growth";
    public const string Scale = "scale";

    public static readonly string[] All = [Sandbox, Growth, Scale];
}
