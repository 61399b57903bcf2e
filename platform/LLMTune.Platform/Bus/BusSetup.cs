using System.ComponentModel.DataAnnotations;
using LLMTune.Platform.Modules;
using LLMTune.Platform.Outbox;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Bus;

public enum BusTransport
{
    InMemory,
    RabbitMq,
}

public sealed class BusOptions
{
    public const string Section = "Bus";

    /// <summary>InMemory for the single process, RabbitMq for split mode (env <c>Bus__Transport</c>).</summary>
    public BusTransport Transport { get; set; } = BusTransport.InMemory;

    /// <summary>Consumer prefetch per endpoint on RabbitMQ.</summary>
    [Range(1, 1000)]
    public int PrefetchCount { get; set; } = 16;

    /// <summary>
    /// MassTransit's usage reporting to its vendor (<c>Bus:UsageTelemetry</c>): off unless the operator opts in,
    /// since a self-hosted platform must not phone home.
    /// </summary>
    public bool UsageTelemetry { get; set; }
}

public static class BusSetup
{
    /// <summary>MassTransit over RabbitMQ (<c>ConnectionStrings:RabbitMq</c>, an amqp:// URL) or in memory.</summary>
    public static IServiceCollection AddLLMTuneBus(
        this IServiceCollection services, IConfiguration configuration, IEnumerable<IServiceModule> modules)
    {
        services.AddOptions<BusOptions>().BindConfiguration(BusOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // The transport and usage telemetry are registration-time choices; everything else is read through validated IOptions below.
        var registration = configuration.GetSection(BusOptions.Section).Get<BusOptions>() ?? new BusOptions();
        var transport = registration.Transport;
        var rabbitUrl = configuration.GetConnectionString("RabbitMq");
        if (transport == BusTransport.RabbitMq && !Uri.TryCreate(rabbitUrl, UriKind.Absolute, out _))
        {
            throw new OptionsValidationException("ConnectionStrings:RabbitMq", typeof(BusOptions),
                ["ConnectionStrings:RabbitMq (env ConnectionStrings__RabbitMq) must be an amqp:// URL when Bus:Transport is RabbitMq."]);
        }

        services.AddSingleton<BusInstance>();
        services.TryAddSingleton<InboxExemptions>();
        services.AddMassTransit(bus =>
        {
            bus.SetKebabCaseEndpointNameFormatter();
            if (!registration.UsageTelemetry)
            {
                bus.DisableUsageTelemetry();
            }

            foreach (var module in modules)
            {
                module.AddConsumers(bus);
            }

            if (transport == BusTransport.RabbitMq)
            {
                bus.AddConfigureEndpointsCallback((context, queueName, endpoint) =>
                {
                    // Quorum queues survive a broker node loss; docs/architecture.md "Scaling out".
                    if (endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
                    {
                        rabbit.SetQuorumQueue();
                        if (context.GetRequiredService<BusInstance>().Owns(queueName))
                        {
                            rabbit.QueueExpiration = BusInstance.QueueExpiration; // EveryInstanceConsumerDefinition
                        }
                    }
                });
                bus.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(new Uri(rabbitUrl!));
                    cfg.PrefetchCount = context.GetRequiredService<IOptions<BusOptions>>().Value.PrefetchCount;
                    cfg.UseConsumeFilter(typeof(InboxFilter<>), context);
                    cfg.ConfigureEndpoints(context);
                });
            }
            else
            {
                bus.UsingInMemory((context, cfg) =>
                {
                    cfg.UseConsumeFilter(typeof(InboxFilter<>), context);
                    cfg.ConfigureEndpoints(context);
                });
            }
        });
        return services;
    }
}
