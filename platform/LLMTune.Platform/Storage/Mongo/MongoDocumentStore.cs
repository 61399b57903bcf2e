using MongoDB.Bson;
using MongoDB.Bson.Serialization;
using MongoDB.Bson.Serialization.Conventions;
using MongoDB.Bson.Serialization.Serializers;
using MongoDB.Driver;

namespace LLMTune.Platform.Storage.Mongo;

/// <summary>The production store: one MongoDB database; TTL indexes are MongoDB's own.</summary>
public sealed class MongoDocumentStore : IDocumentStore
{
    public MongoDocumentStore(string connectionString, string databaseName)
        : this(new MongoClient(connectionString), databaseName)
    {
    }

    public MongoDocumentStore(IMongoClient client, string databaseName)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(databaseName);
        MongoMapping.EnsureRegistered();
        Database = client.GetDatabase(databaseName);
    }

    public IMongoDatabase Database { get; }

    public IDocumentCollection<T> Collection<T>(string name) where T : class, IDocument =>
        new MongoDocumentCollection<T>(Database.GetCollection<T>(MemberPaths.ValidateCollectionName(name)));

    public Task PingAsync(CancellationToken ct) =>
        Database.RunCommandAsync<BsonDocument>(new BsonDocument("ping", 1), cancellationToken: ct);
}

/// <summary>Process-wide BSON conventions, so documents read back as they do from the embedded store.</summary>
internal static class MongoMapping
{
    private static int _registered;

    public static void EnsureRegistered()
    {
        if (Interlocked.Exchange(ref _registered, 1) != 0)
        {
            return;
        }

        ConventionRegistry.Register(
            "llmtune",
            new ConventionPack
            {
                // Old documents with removed fields still load.
                new IgnoreExtraElementsConvention(true),
                // Enums by name, like LiteDB, and readable in the shell.
                new EnumRepresentationConvention(BsonType.String),
            },
            _ => true);
        BsonSerializer.TryRegisterSerializer(new GuidSerializer(GuidRepresentation.Standard));
        BsonSerializer.TryRegisterSerializer(new DecimalSerializer(BsonType.Decimal128));
        BsonSerializer.TryRegisterSerializer(new DateTimeSerializer(DateTimeKind.Utc));
    }
}
