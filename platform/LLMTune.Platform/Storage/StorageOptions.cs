using Microsoft.Extensions.Options;
using MongoDB.Driver;

namespace LLMTune.Platform.Storage;

public enum StorageProvider
{
    LiteDb,
    MongoDb,
}

/// <summary>Configuration section <c>Storage</c>; the MongoDB connection string is <c>ConnectionStrings:MongoDb</c>.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";
    public const string MongoConnectionStringName = "MongoDb";

    /// <summary><c>Storage:Provider</c>: <c>LiteDb</c> (embedded file, the default) or <c>MongoDb</c>.</summary>
    public StorageProvider Provider { get; set; } = StorageProvider.LiteDb;

    /// <summary><c>Storage:LiteDbPath</c>: the embedded database file (<c>:memory:</c> for a throw-away store).</summary>
    public string LiteDbPath { get; set; } = "./data/llmtune.db";

    /// <summary><c>Storage:LiteDbTtlSweepInterval</c>: how often the embedded store deletes expired documents.</summary>
    public TimeSpan LiteDbTtlSweepInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>Storage:MongoDatabase</c>: the database name inside the MongoDB deployment.</summary>
    public string MongoDatabase { get; set; } = "llmtune";

    /// <summary>From <c>ConnectionStrings:MongoDb</c> (environment <c>ConnectionStrings__MongoDb</c>) unless set here.</summary>
    public string? MongoConnectionString { get; set; }
}

internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = new List<string>();
        if (!Enum.IsDefined(options.Provider))
        {
            failures.Add($"Storage:Provider must be LiteDb or MongoDb (was '{options.Provider}').");
        }

        if (options.Provider == StorageProvider.LiteDb)
        {
            if (string.IsNullOrWhiteSpace(options.LiteDbPath))
            {
                failures.Add("Storage:LiteDbPath must name a database file.");
            }

            if (options.LiteDbTtlSweepInterval <= TimeSpan.Zero)
            {
                failures.Add($"Storage:LiteDbTtlSweepInterval must be positive (was '{options.LiteDbTtlSweepInterval}').");
            }
        }

        if (options.Provider == StorageProvider.MongoDb)
        {
            if (string.IsNullOrWhiteSpace(options.MongoConnectionString))
            {
                failures.Add($"ConnectionStrings:{StorageOptions.MongoConnectionStringName} (environment ConnectionStrings__{StorageOptions.MongoConnectionStringName}) is required when Storage:Provider is MongoDb.");
            }
            else
            {
                try
                {
                    _ = MongoUrl.Create(options.MongoConnectionString);
                }
                catch (Exception ex) when (ex is MongoConfigurationException or FormatException or ArgumentException)
                {
                    // The message names the setting but never echoes the value: it may hold a password.
                    failures.Add($"ConnectionStrings:{StorageOptions.MongoConnectionStringName} is not a valid MongoDB connection string: {ex.Message}");
                }
            }

            if (string.IsNullOrWhiteSpace(options.MongoDatabase) || options.MongoDatabase.IndexOfAny(['/', '\\', '.', ' ', '"', '$']) >= 0)
            {
                failures.Add($"Storage:MongoDatabase must be a plain database name (was '{options.MongoDatabase}').");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
