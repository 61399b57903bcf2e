using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LLMTune.Platform.Outbox;

public static class OutboxServiceCollectionExtensions
{
    /// <summary>Registers <see cref="EventOutbox"/>, its validated <c>Outbox</c> options and the <see cref="OutboxDispatcher"/>.</summary>
    public static IServiceCollection AddOutbox(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(EventOutbox)))
        {
            return services;
        }

        services.AddOptions<OutboxOptions>().BindConfiguration(OutboxOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<OutboxSignal>();
        services.TryAddSingleton<InboxExemptions>();
        services.AddSingleton<EventOutbox>();
        services.AddSingleton<OutboxDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<OutboxDispatcher>());
        return services;
    }
}
