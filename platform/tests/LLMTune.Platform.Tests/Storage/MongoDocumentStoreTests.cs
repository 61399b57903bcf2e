using LLMTune.Platform.Storage;
using LLMTune.Platform.Storage.Mongo;
using MongoDB.Bson;
using MongoDB.Driver;
using Testcontainers.MongoDb;

namespace LLMTune.Platform.Tests.Storage;

/// <summary>
/// Finds a MongoDB for the contract tests: <c>LLMTUNE_TEST_MONGO</c> (a connection string) if set, else a
/// Testcontainers MongoDB when Docker is reachable, else none, with the reason the tests are skipped.
/// </summary>
public sealed class MongoServerFixture : IAsyncLifetime
{
    public const string EnvironmentVariable = "LLMTUNE_TEST_MONGO";

    private MongoDbContainer? _container;

    public IMongoClient? Client { get; private set; }

    public string? SkipReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var connectionString = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            try
            {
                // A replica set, as in production: batches (the outbox) commit in multi-document transactions.
                _container = new MongoDbBuilder("mongo:8.0").WithReplicaSet().Build();
                await _container.StartAsync(TestContext.Current.CancellationToken);
                connectionString = _container.GetConnectionString();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                SkipReason = $"MongoDB contract tests skipped: set {EnvironmentVariable} to a connection string, or make Docker reachable for Testcontainers ({ex.GetType().Name}: {FirstLine(ex.Message)})";
                return;
            }
        }

        Client = new MongoClient(connectionString);
        try
        {
            // TTL deletions run every 60 s by default; ask for 1 s so the TTL test is quick (needs admin rights).
            await Client.GetDatabase("admin").RunCommandAsync<BsonDocument>(
                new BsonDocument { { "setParameter", 1 }, { "ttlMonitorSleepSecs", 1 } });
        }
        catch (MongoCommandException)
        {
            // Without admin rights the TTL test simply waits for the default monitor period.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}

/// <summary>The contract on MongoDB, in a throw-away database.</summary>
public sealed class MongoDocumentStoreTests(MongoServerFixture server) : DocumentStoreContractTests, IClassFixture<MongoServerFixture>
{
    private readonly string _databaseName = "llmtune_test_" + Guid.NewGuid().ToString("N")[..12];

    // MongoDB's TTL monitor runs every 60 s unless the fixture could shorten it.
    protected override TimeSpan ExpiryDeadline => TimeSpan.FromSeconds(150);

    protected override ValueTask<IDocumentStore> OpenStoreAsync()
    {
        if (server.Client is null)
        {
            Assert.Skip(server.SkipReason ?? "MongoDB unavailable");
        }

        return ValueTask.FromResult<IDocumentStore>(new MongoDocumentStore(server.Client, _databaseName));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (server.Client is not null)
        {
            await server.Client.DropDatabaseAsync(_databaseName);
        }
    }
}
