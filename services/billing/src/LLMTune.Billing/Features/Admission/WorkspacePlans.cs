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
/// <remarks>
/// On an exclusive store the plans read are kept in memory and read again only after a write to the workspaces
/// (<see cref="IDocumentStore.ChangeStamp"/>): exact, as every write to them goes through this process, and one store
/// read less per request.
/// </remarks>
public sealed class WorkspacePlans(IDocumentStore store, PlanCatalog catalog)
{
    private readonly IDocumentCollection<WorkspacePlan> workspaces = store.Collection<WorkspacePlan>(WorkspacePlan.Collection);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (long Stamp, string? Plan)> read = new(StringComparer.Ordinal);

    public async Task<WorkspaceLimits> ForWorkspaceAsync(string workspaceId, CancellationToken ct)
    {
        var plan = await PlanOfAsync(workspaceId, ct) ?? PlanNames.Sandbox;
        return new WorkspaceLimits(plan, catalog.LimitsFor(workspaceId, plan));
    }

    public async Task<bool> ExistsAsync(string workspaceId, CancellationToken ct) => await PlanOfAsync(workspaceId, ct) is not null;

    /// <summary>The recorded plan; null when the workspace does not exist.</summary>
    private async Task<string?> PlanOfAsync(string workspaceId, CancellationToken ct)
    {
        // Taken before the read: a write after it changes the stamp, so what is read now is never kept past that write.
        var stamp = store.ChangeStamp(WorkspacePlan.Collection);
        if (stamp is { } current && read.TryGetValue(workspaceId, out var kept) && kept.Stamp == current)
        {
            return kept.Plan;
        }

        var plan = (await workspaces.GetAsync(workspaceId, ct))?.Plan;
        if (stamp is { } taken)
        {
            read[workspaceId] = (taken, plan);
        }

        return plan;
    }
}
