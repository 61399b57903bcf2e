using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// The gateway's workspace document as admission reads it (admission runs in the gateway process, beside the data):
/// only the plan, which the operator sets with <c>PUT /admin/workspaces/{id}/plan</c>. Billing never writes it.
/// </summary>
public sealed class WorkspacePlan : IDocument
{
    public const string Collection = "workspaces";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string Plan { get; set; } = PlanNames.Sandbox;
}

/// <summary>A workspace's plan as the gateway records it, read on every call, so a plan change applies to the next request on every replica.</summary>
public sealed class WorkspacePlans(IDocumentStore store, PlanCatalog catalog)
{
    private readonly IDocumentCollection<WorkspacePlan> workspaces = store.Collection<WorkspacePlan>(WorkspacePlan.Collection);

    public async Task<WorkspaceLimits> ForWorkspaceAsync(string workspaceId, CancellationToken ct)
    {
        var plan = (await workspaces.GetAsync(workspaceId, ct))?.Plan ?? PlanNames.Sandbox;
        return new WorkspaceLimits(plan, catalog.LimitsFor(workspaceId, plan));
    }

    public async Task<bool> ExistsAsync(string workspaceId, CancellationToken ct) => await workspaces.GetAsync(workspaceId, ct) is not null;
}
