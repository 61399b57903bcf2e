using System.ComponentModel.DataAnnotations;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using LLMTune.Platform.Modules;

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
}

public static class BusSetup
{
    /// <summary>MassTransit over RabbitMQ (<c>ConnectionStrings:RabbitMq</c>, an amqp:// URL) or in memory.</summary>
    public static IServiceCollection AddLLMTuneBus(
        this IServiceCollection services, IConfiguration configuration, IEnumerable<IServiceModule> modules)
    {
        services.AddOptions<BusOptions>().BindConfiguration(BusOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // The transport is a registration-time choice; everything else is read through validated IOptions below.
        var transport = configuration.GetSection(BusOptions.Section).Get<BusOptions>()?.Transport ?? BusTransport.InMemory;
        var rabbitUrl = configuration.GetConnectionString("RabbitMq");
        if (transport == BusTransport.RabbitMq && !Uri.TryCreate(rabbitUrl, UriKind.Absolute, out _))
        {
            throw new OptionsValidationException("ConnectionStrings:RabbitMq", typeof(BusOptions),
                ["ConnectionStrings:RabbitMq (env ConnectionStrings__RabbitMq) must be an amqp:// URL when Bus:Transport is RabbitMq."]);
        }

        services.AddSingleton<BusInstance>();
        services.AddMassTransit(bus =>
        {
            bus.SetKebabCaseEndpointNameFormatter();
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
                    cfg.ConfigureEndpoints(context);
                });
            }
            else
            {
                bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
            }
        });
        return services;
    }
}
