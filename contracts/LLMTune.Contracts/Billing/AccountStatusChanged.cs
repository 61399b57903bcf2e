namespace LLMTune.Contracts;

/// <summary>
/// A workspace crossed a threshold: <c>quota_exhausted</c> (the gateway's admission took the month's last request),
/// <c>insufficient_credits</c> (a charge took the balance to zero or below) or <c>active</c> (a top-up brought it back
/// above zero). Billing records the credit statuses in the same write as the balance change; the gateway's admission
/// keeps its own copy of them (402 on prepaid plans). <c>Sequence</c> grows with every balance change of the workspace,
/// so a copy applies only newer statuses (0 on <c>quota_exhausted</c>, which no copy keeps).
/// </summary>
public sealed record AccountStatusChanged(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string Plan,
    string Status,
    long Sequence = 0) : IWorkspaceEvent;
