using LLMTune.Platform.Storage;
using Microsoft.Extensions.Options;

namespace LLMTune.Billing.Features.Plans;

/// <summary>
/// The gateway's workspace document as billing reads it: only the plan, which the operator sets with
/// <c>PUT /admin/workspaces/{id}/plan</c>. Billing never writes this collection.
/// </summary>
public sealed class WorkspacePlan : IDocument
{
    public const string Collection = "workspaces";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string Plan { get; set; } = PlanNames.Sandbox;
}

public static class PlanNames
{
    public const string Sandbox = "sandbox";
    public const string Growth = "growth";
    public const string Scale = "scale";
}

public sealed record WorkspaceLimits(string Plan, PlanLimits Limits);

/// <summary>A workspace's plan (read from the store on every call, so a plan change applies to the next request everywhere) and its limits.</summary>
public sealed class PlanCatalog(IDocumentStore store, IOptionsMonitor<BillingOptions> options)
{
    private readonly IDocumentCollection<WorkspacePlan> workspaces = store.Collection<WorkspacePlan>(WorkspacePlan.Collection);

    public async Task<WorkspaceLimits> ForWorkspaceAsync(string workspaceId, CancellationToken ct)
    {
        var plan = (await workspaces.GetAsync(workspaceId, ct))?.Plan ?? PlanNames.Sandbox;
        return new WorkspaceLimits(plan, LimitsFor(workspaceId, plan));
    }

    public PlanLimits LimitsFor(string workspaceId, string plan)
    {
        var current = options.CurrentValue;
        if (current.Workspaces.TryGetValue(workspaceId, out var own))
        {
            return own;
        }

        return plan switch
        {
            PlanNames.Growth => current.Plans.Growth,
            PlanNames.Scale => current.Plans.Scale,
            _ => current.Plans.Sandbox,
        };
    }
}
