using LLMTune.Platform.Storage;
using LLMTune.Platform.Storage.LiteDb;
using LLMTune.Platform.Storage.Mongo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Tests.Storage;

public sealed class StorageRegistrationTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "llmtune-storage-di-" + Guid.NewGuid().ToString("N"));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddDocumentStore(builder.Configuration);
        builder.Services.AddDocumentStore(builder.Configuration); // a second call must not register twice
        return builder.Build();
    }

    [Fact]
    public async Task Default_is_the_embedded_store_and_it_reports_ready()
    {
        var path = Path.Combine(_directory, "nested", "store.db");
        using var host = BuildHost(new() { ["Storage:LiteDbPath"] = path });
        await host.StartAsync(Ct);

        var store = host.Services.GetRequiredService<IDocumentStore>();
        var health = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Tags.Contains("ready"), Ct);

        Assert.IsType<LiteDbDocumentStore>(store);
        Assert.Same(store, host.Services.GetRequiredService<IDocumentStore>());
        Assert.True(File.Exists(path));
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Contains(DocumentStoreHealthCheck.Name, health.Entries.Keys);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task MongoDb_without_a_connection_string_stops_start_up_naming_the_setting()
    {
        using var host = BuildHost(new() { ["Storage:Provider"] = "MongoDb" });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("ConnectionStrings:MongoDb", ex.Message);
    }

    [Fact]
    public async Task Malformed_mongo_connection_string_stops_start_up_without_echoing_it()
    {
        using var host = BuildHost(new()
        {
            ["Storage:Provider"] = "MongoDb",
            ["ConnectionStrings:MongoDb"] = "postgres://user:s3cret@db",
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("ConnectionStrings:MongoDb", ex.Message);
        Assert.DoesNotContain("s3cret", ex.Message);
    }

    [Fact]
    public async Task Unknown_provider_stops_start_up_naming_the_setting()
    {
        using var host = BuildHost(new() { ["Storage:Provider"] = "Postgres" });

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync(Ct));

        Assert.Contains("Storage:Provider", ex.Message);
    }

    [Fact]
    public async Task MongoDb_from_connection_string_is_chosen_and_unreachable_server_reports_unhealthy()
    {
        // Port 1 on loopback refuses at once; the short selection timeout keeps the check quick.
        using var host = BuildHost(new()
        {
            ["Storage:Provider"] = "MongoDb",
            ["Storage:MongoDatabase"] = "llmtune_di_test",
            ["ConnectionStrings:MongoDb"] = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
        });
        await host.StartAsync(Ct);

        var store = host.Services.GetRequiredService<IDocumentStore>();
        var health = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Tags.Contains("ready"), Ct);

        var mongo = Assert.IsType<MongoDocumentStore>(store);
        Assert.Equal("llmtune_di_test", mongo.Database.DatabaseNamespace.DatabaseName);
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains("unreachable", health.Entries[DocumentStoreHealthCheck.Name].Description);
        await host.StopAsync(Ct);
    }
}
