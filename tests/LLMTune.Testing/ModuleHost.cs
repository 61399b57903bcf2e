using LLMTune.Platform;
using LLMTune.Platform.Modules;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Testing;

/// <summary>
/// A split-mode service process made of the given modules on the platform's real service defaults, on a free
/// loopback port: stands in for "another service" in proxy and bus tests.
/// </summary>
public sealed class ModuleHost : IAsyncDisposable
{
    private ModuleHost(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
    }

    public WebApplication App { get; }
    public Uri Address { get; }
    public IServiceProvider Services => App.Services;

    public static async Task<ModuleHost> StartAsync(IReadOnlyList<IServiceModule> modules, IDictionary<string, string?> settings)
    {
        var data = Directory.CreateTempSubdirectory("llmtune-module-").FullName;
        var args = new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["Storage:Provider"] = "LiteDb",
            ["Storage:LiteDbPath"] = Path.Combine(data, "module.db"),
            ["Bus:Transport"] = "InMemory",
            ["Internal:Secret"] = "internal-secret-for-tests-0123456789",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings)
        {
            args[key] = value;
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args.Select(kv => $"--{kv.Key}={kv.Value}").ToArray() });
        builder.AddServiceDefaults(new HostTopology(modules.Select(m => m.Name).ToList(), IsAllInOne: false), modules);
        var app = builder.Build();
        app.UseServiceDefaults(modules);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ModuleHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
