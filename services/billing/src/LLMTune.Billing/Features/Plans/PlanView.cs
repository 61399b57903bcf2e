using LLMTune.Billing.Features.Shared;
using LLMTune.Contracts;
using LLMTune.Platform.Storage;
using MassTransit;

namespace LLMTune.Billing.Features.Plans;

/// <summary>Billing's copy of a workspace's plan, fed by the gateway's <see cref="WorkspacePlanChanged"/>.</summary>
public sealed class BilledWorkspace : IDocument
{
    public const string Collection = "billing_workspaces";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string Plan { get; set; } = PlanNames.Sandbox;

    /// <summary>The <see cref="WorkspacePlanChanged.Sequence"/> this copy is at: older plan changes are ignored.</summary>
    public long Sequence { get; set; }
}

/// <summary>
/// The plans billing prices with and reports, from its own copy (the gateway owns workspaces and announces their
/// plans; billing never reads the gateway's data). A workspace billing has not heard of is on Sandbox.
/// </summary>
public sealed class PlanView(IDocumentStore store, PlanCatalog catalog)
{
    private readonly IDocumentCollection<BilledWorkspace> workspaces = store.Collection<BilledWorkspace>(BilledWorkspace.Collection);

    public async Task<WorkspaceLimits> ForWorkspaceAsync(string workspaceId, CancellationToken ct)
    {
        var plan = (await workspaces.GetAsync(workspaceId, ct))?.Plan ?? PlanNames.Sandbox;
        return new WorkspaceLimits(plan, catalog.LimitsFor(workspaceId, plan));
    }

    /// <summary>Whether the gateway has announced this workspace (top-ups are only taken for known workspaces).</summary>
    public async Task<bool> KnowsAsync(string workspaceId, CancellationToken ct) => await workspaces.GetAsync(workspaceId, ct) is not null;

    public Task ApplyAsync(WorkspacePlanChanged changed, CancellationToken ct) =>
        SequencedCopy.KeepNewestAsync(workspaces, changed.WorkspaceId, w => w.Id == changed.WorkspaceId && w.Sequence < changed.Sequence, w =>
        {
            w.Plan = changed.Plan;
            w.Sequence = changed.Sequence;
        }, () => new BilledWorkspace { Id = changed.WorkspaceId, Plan = changed.Plan, Sequence = changed.Sequence }, ct);
}

public sealed class WorkspacePlanConsumer(PlanView plans) : IConsumer<WorkspacePlanChanged>
{
    public Task Consume(ConsumeContext<WorkspacePlanChanged> context) => plans.ApplyAsync(context.Message, context.CancellationToken);
}
