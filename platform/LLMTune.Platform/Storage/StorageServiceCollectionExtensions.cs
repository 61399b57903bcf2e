using LLMTune.Platform.Storage.LiteDb;
using LLMTune.Platform.Storage.Mongo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IDocumentStore"/> (singleton) chosen by <c>Storage:Provider</c>, its options
    /// (validated on start) and a health check tagged <c>ready</c>.
    /// </summary>
    public static IServiceCollection AddDocumentStore(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(DocumentStoreRegistered)))
        {
            return services;
        }

        services.AddSingleton<DocumentStoreRegistered>();
        services.AddOptions<StorageOptions>()
            .Bind(configuration.GetSection(StorageOptions.Section))
            .PostConfigure(o => o.MongoConnectionString ??= configuration.GetConnectionString(StorageOptions.MongoConnectionStringName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton<IDocumentStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            return options.Provider switch
            {
                StorageProvider.MongoDb => new MongoDocumentStore(options.MongoConnectionString!, options.MongoDatabase),
                _ => new LiteDbDocumentStore(options.LiteDbPath, options.LiteDbTtlSweepInterval, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<LiteDbDocumentStore>>()),
            };
        });

        services.AddHealthChecks().AddCheck<DocumentStoreHealthCheck>(DocumentStoreHealthCheck.Name, tags: ["ready"]);
        return services;
    }

    /// <summary>Marks the registration done, so a second call does not add a duplicate health check.</summary>
    private sealed class DocumentStoreRegistered;
}
