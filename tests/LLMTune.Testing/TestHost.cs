using System.Net.Http.Headers;
using LLMTune.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Testing;

/// <summary>
/// The real LLMTune host on a free loopback port (Kestrel, not a test server), with its own temporary data directory.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private TestHost(WebApplication app, string dataDirectory, Uri address)
    {
        App = app;
        DataDirectory = dataDirectory;
        Address = address;
    }

    public WebApplication App { get; }
    public string DataDirectory { get; }
    public Uri Address { get; }
    public IServiceProvider Services => App.Services;

    /// <summary>The key the first start wrote to <c>initial-api-key</c> (single-process mode only).</summary>
    public string InitialKey => File.ReadAllText(Path.Combine(DataDirectory, "initial-api-key")).Trim();

    public static async Task<TestHost> StartAsync(
        string target = "all",
        IDictionary<string, string?>? settings = null,
        Action<WebApplicationBuilder>? configure = null,
        string? dataDirectory = null)
    {
        var data = dataDirectory ?? Directory.CreateTempSubdirectory("llmtune-test-").FullName;
        var args = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            $"--Storage:LiteDbPath={Path.Combine(data, "llmtune.db")}",
            $"--Gateway:InitialWorkspace:KeyFile={Path.Combine(data, "initial-api-key")}",
            $"--Artifacts:LocalPath={Path.Combine(data, "artifacts")}",
            $"--Artifacts:S3:CachePath={Path.Combine(data, "artifact-cache")}",
            $"--Finetune:WorkPath={Path.Combine(data, "finetune-work")}",
            $"--Webhooks:EncryptionKeyFile={Path.Combine(data, "webhooks-encryption-key")}",
            "--Serilog:MinimumLevel:Default=Warning",
        };
        args.AddRange((settings ?? new Dictionary<string, string?>()).Select(kv => $"--{kv.Key}={kv.Value}"));

        var app = LLMTuneHost.Build(args.ToArray(), target, configure);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestHost(app, data, new Uri(address));
    }

    public HttpClient Client(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromMinutes(2) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
