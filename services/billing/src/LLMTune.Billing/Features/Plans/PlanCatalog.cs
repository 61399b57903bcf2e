using Microsoft.Extensions.Options;

namespace LLMTune.Billing.Features.Plans;

public static class PlanNames
{
    public const string Sandbox = "sandbox";
    public const string Growth = "growth";
    public const string Scale = "scale";
}

public sealed record WorkspaceLimits(string Plan, PlanLimits Limits);

/// <summary>What each plan allows and costs (configuration, the same in every process), and a workspace's own overrides.</summary>
public sealed class PlanCatalog(IOptionsMonitor<BillingOptions> options)
{
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
