using LLMTune.Platform.Modules;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>
/// Webhooks: lifecycle events become stored deliveries (one per event and destination), signed the Standard Webhooks
/// way, sent by a leased worker with stored retry times, logged with every attempt, and safe against SSRF.
/// </summary>
public sealed class WebhooksModule : IServiceModule
{
    public string Name => "webhooks";

    public IReadOnlyList<ServiceRoute> Routes => [new("/v1/webhooks/{**rest}")];

    public void AddServices(WebApplicationBuilder builder, HostTopology topology)
    {
        var services = builder.Services;
        services.AddOptions<WebhooksOptions>().BindConfiguration(WebhooksOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WebhooksOptions>, WebhooksOptionsValidator>();

        services.AddSingleton<SecretProtector>();
        services.AddSingleton<DestinationPolicy>();
        services.AddSingleton<WorkspaceSecrets>();
        services.AddSingleton<EndpointStore>();
        services.AddSingleton<DeliveryStore>();
        services.AddSingleton<DeliverySignal>();
        services.AddSingleton<DeliveryHandOff>();
        services.AddSingleton<DeliveryIntake>();
        services.AddSingleton<WebhookSender>();
        services.AddHostedService<WebhooksStartup>();

        // Always registered; it reads Webhooks:Delivery:Enabled from the validated options when it starts.
        services.AddSingleton<DeliveryWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<DeliveryWorker>());
    }

    public void AddConsumers(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<LifecycleEventConsumer, LifecycleEventConsumerDefinition>();
    }

    public void MapEndpoints(WebApplication app, HostTopology topology) => app.MapWebhookApi();

    /// <summary>Checks the encryption key and creates the indexes before the worker looks for deliveries.</summary>
    private sealed class WebhooksStartup(SecretProtector protector, EndpointStore endpoints, DeliveryStore deliveries) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            protector.EnsureKey();
            await endpoints.EnsureIndexesAsync(cancellationToken);
            await deliveries.EnsureIndexesAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
