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

    public async Task CommitAsync(WriteBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var targets = batch.Operations.Select(o => o.Collection is IMongoBatchTarget target && target.Database.DatabaseNamespace == Database.DatabaseNamespace
            ? target
            : throw new ArgumentException("Every collection of a batch must come from the store that commits it.", nameof(batch))).ToList();
        if (targets.Count == 0)
        {
            return;
        }

        var versions = batch.SaveVersions();
        using var session = await Database.Client.StartSessionAsync(cancellationToken: ct).ConfigureAwait(false);
        // One write is atomic by itself, and needs no replica set.
        var transaction = targets.Count > 1;
        if (transaction)
        {
            session.StartTransaction(new TransactionOptions(writeConcern: WriteConcern.WMajority));
        }

        try
        {
            for (var i = 0; i < targets.Count; i++)
            {
                await targets[i].ApplyAsync(session, batch.Operations[i], ct).ConfigureAwait(false);
            }

            if (transaction)
            {
                await session.CommitTransactionAsync(ct).ConfigureAwait(false);
            }
        }
        catch (NotSupportedException ex) when (transaction)
        {
            batch.RestoreVersions(versions);
            throw new InvalidOperationException("MongoDB transactions need a replica set: start mongod with --replSet (one node is enough) and add replicaSet=<name> to the connection string.", ex);
        }
        catch (MongoCommandException ex) when (transaction && ex.Code == 20)
        {
            // IllegalOperation: "Transaction numbers are only allowed on a replica set member or mongos".
            batch.RestoreVersions(versions);
            throw new InvalidOperationException("MongoDB transactions need a replica set: start mongod with --replSet (one node is enough) and add replicaSet=<name> to the connection string.", ex);
        }
        catch
        {
            if (transaction && session.IsInTransaction)
            {
                await session.AbortTransactionAsync(CancellationToken.None).ConfigureAwait(false);
            }

            batch.RestoreVersions(versions);
            throw;
        }
    }

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
