namespace LLMTune.Contracts;

/// <summary>
/// A workspace was created on a plan or the operator changed its plan (the gateway owns workspaces), recorded in the
/// same write. Billing keeps its own copy for prices and <c>GET /v1/billing</c>. <c>Sequence</c> grows with every plan
/// change of the workspace, so a copy never goes back to an older plan when events arrive out of order.
/// </summary>
public sealed record WorkspacePlanChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string Plan,
    long Sequence) : IWorkspaceEvent;
