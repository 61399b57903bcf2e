using System.ComponentModel.DataAnnotations;
using LLMTune.Billing.Features.Admission;
using LLMTune.Billing.Features.Charging;
using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Outbox;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace LLMTune.Billing;

/// <summary>What both billing modules use: the plans' configuration (registered once when they share a process).</summary>
internal static class BillingSetup
{
    public static void AddPlans(this IServiceCollection services)
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
    }

    private static bool ValidPlans(BillingOptions options) =>
        new[] { options.Plans.Sandbox, options.Plans.Growth, options.Plans.Scale }.Concat(options.Workspaces.Values)
            .All(limits => Validator.TryValidateObject(limits, new ValidationContext(limits), null, validateAllProperties: true));
}

/// <summary>
/// Every billing consumer retries a failing message a few times with backoff (the store briefly away); a naturally
/// idempotent one (the inference charge, keyed by usage id) skips the inbox.
/// </summary>
public sealed class BillingConsumerDefinition<T> : ConsumerDefinition<T> where T : class, IConsumer
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<T> consumer, IRegistrationContext context)
    {
        endpoint.UseMessageRetry(r => r.Exponential(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200)));
        InboxExemptions.ExemptIfNaturallyIdempotent<T>(endpoint, context);
    }
}

internal sealed class AdmissionIndexes(Counters counters, TokenBudget tokens) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await counters.EnsureIndexesAsync(ct);
        await tokens.EnsureIndexesAsync(ct);
    }

    /// <summary>Counts held in memory (one-process store) reach the store before it closes.</summary>
    public Task StopAsync(CancellationToken ct) => counters.FlushAsync(ct);
}

internal sealed class ChargingIndexes(Meter charging) : IHostedService
{
    public Task StartAsync(CancellationToken ct) => charging.EnsureIndexesAsync(ct);

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
