using System.ComponentModel.DataAnnotations;
using LLMTune.Billing.Features.Accounts;
using LLMTune.Billing.Features.Admission;
using LLMTune.Billing.Features.Charging;
using LLMTune.Billing.Features.Plans;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace LLMTune.Billing;

/// <summary>What both billing modules use (registered once when they share a process).</summary>
internal static class BillingSetup
{
    public static void AddBillingCore(this IServiceCollection services)
    {
        if (services.Any(s => s.ServiceType == typeof(PlanCatalog)))
        {
            return;
        }

        services.AddOptions<BillingOptions>().BindConfiguration(BillingOptions.Section)
            .Validate(ValidPlans, "Billing plan limits must be non-negative (see Billing:Plans and Billing:Workspaces).")
            .Validate(o => Validator.TryValidateObject(o.Admission, new ValidationContext(o.Admission), null, validateAllProperties: true)
                && o.Admission.InFlightExpiry > TimeSpan.Zero, "Billing:Admission:DefaultMaxTokens must be 1-1000000 and InFlightExpiry positive.")
            .ValidateOnStart();
        services.TryAddSingleton<PlanCatalog>();
        services.TryAddSingleton<Counters>();
        services.TryAddSingleton<TokenBudget>();
        services.TryAddSingleton<Balances>();
        services.TryAddSingleton<AccountStatusPublisher>();
        services.TryAddSingleton<Meter>();
        services.AddHostedService<BillingIndexes>();
    }

    private static bool ValidPlans(BillingOptions options) =>
        new[] { options.Plans.Sandbox, options.Plans.Growth, options.Plans.Scale }.Concat(options.Workspaces.Values)
            .All(limits => Validator.TryValidateObject(limits, new ValidationContext(limits), null, validateAllProperties: true));
}

internal sealed class BillingIndexes(Counters counters, TokenBudget tokens, Meter charging) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await counters.EnsureIndexesAsync(ct);
        await tokens.EnsureIndexesAsync(ct);
        await charging.EnsureIndexesAsync(ct);
    }

    /// <summary>Counts held in memory (one-process store) reach the store before it closes.</summary>
    public Task StopAsync(CancellationToken ct) => counters.FlushAsync(ct);
}
