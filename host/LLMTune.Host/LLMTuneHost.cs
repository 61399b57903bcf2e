using LLMTune.Batch;
using LLMTune.Billing;
using LLMTune.Finetune;
using LLMTune.Gateway;
using LLMTune.Inference;
using LLMTune.Platform;
using LLMTune.Platform.Modules;
using LLMTune.Webhooks;
using Microsoft.Extensions.Configuration.Memory;

namespace LLMTune.Host;

/// <summary>Composes the modules into one web application for a target (docs/architecture.md "One binary, many targets").</summary>
public static class LLMTuneHost
{
    /// <summary>Every module this binary carries, in start-up order.</summary>
    /// <remarks>Billing's admission runs in the gateway process (its target is <c>gateway</c>), right after the gateway.</remarks>
    public static IReadOnlyList<IServiceModule> Modules() =>
        [new GatewayModule(), new BillingAdmissionModule(), new InferenceModule(), new FinetuneModule(), new WebhooksModule(), new BillingModule(), new BatchModule()];

    public static WebApplication Build(string[] args, string? target, Action<WebApplicationBuilder>? configure = null)
    {
        var allModules = Modules();
        var topology = HostTopology.Parse(target, allModules.Select(m => m.Name));
        var modules = allModules.Where(m => topology.Runs(m.Name)).ToList();

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Lowest-priority defaults that depend on the target: appsettings, environment and arguments override them.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = DefaultsFor(topology) });
        builder.Services.AddSingleton(new ServiceRouteTable(allModules));
        builder.AddServiceDefaults(topology, modules);
        configure?.Invoke(builder); // last, so tests can replace services (e.g. a fake TimeProvider)
        var app = builder.Build();
        app.UseServiceDefaults(modules);
        return app;
    }

    private static Dictionary<string, string?> DefaultsFor(HostTopology topology) => topology.IsAllInOne
        ? new()
        {
            ["urls"] = "http://0.0.0.0:8080",
            ["Storage:Provider"] = "LiteDb",
            ["Bus:Transport"] = "InMemory",
        }
        : new()
        {
            ["urls"] = "http://0.0.0.0:8080",
            ["Storage:Provider"] = "MongoDb",
            ["Bus:Transport"] = "RabbitMq",
        };
}
