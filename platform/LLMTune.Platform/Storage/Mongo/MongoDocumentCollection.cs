using System.Linq.Expressions;
using MongoDB.Bson.Serialization;
using MongoDB.Driver;

namespace LLMTune.Platform.Storage.Mongo;

/// <summary>A collection that can apply the writes of a <see cref="WriteBatch"/> inside a session's transaction.</summary>
internal interface IMongoBatchTarget
{
    IMongoDatabase Database { get; }

    Task ApplyAsync(IClientSessionHandle session, BatchOperation operation, CancellationToken ct);
}

internal sealed class MongoDocumentCollection<T> : IDocumentCollection<T>, IMongoBatchTarget where T : class, IDocument
{
    private const string IdField = "_id";
    private static readonly FilterDefinitionBuilder<T> Filter = Builders<T>.Filter;
    private static readonly string VersionField = VersionElementName();

    private readonly IMongoCollection<T> _collection;

    public MongoDocumentCollection(IMongoCollection<T> collection) => _collection = collection;

    public string Name => _collection.CollectionNamespace.CollectionName;

    public Task InsertAsync(T doc, CancellationToken ct) => InsertAsync(null, doc, ct);

    IMongoDatabase IMongoBatchTarget.Database => _collection.Database;

    Task IMongoBatchTarget.ApplyAsync(IClientSessionHandle session, BatchOperation operation, CancellationToken ct) => operation.Kind switch
    {
        BatchOperationKind.Insert => InsertAsync(session, (T)operation.Document, ct),
        BatchOperationKind.Replace => ReplaceAsync(session, (T)operation.Document, ct),
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation.Kind, "Unknown batch operation."),
    };

    private async Task InsertAsync(IClientSessionHandle? session, T doc, CancellationToken ct)
    {
        var id = MemberPaths.RequireId(doc);
        try
        {
            if (session is null)
            {
                await _collection.InsertOneAsync(doc, cancellationToken: ct).ConfigureAwait(false);
            }
            else
            {
                await _collection.InsertOneAsync(session, doc, cancellationToken: ct).ConfigureAwait(false);
            }
        }
        catch (MongoWriteException ex) when (ex.WriteError?.Category == ServerErrorCategory.DuplicateKey)
        {
            throw new DuplicateDocumentException(Name, id, ex);
        }
    }

    public async Task<T?> GetAsync(string id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        return await _collection.Find(ById(id)).FirstOrDefaultAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<T>> FindAsync(Expression<Func<T, bool>> filter, FindOptions<T>? options, CancellationToken ct) =>
        await Query(filter, options).ToListAsync(ct).ConfigureAwait(false);

    public async Task<T?> FindOneAsync(Expression<Func<T, bool>> filter, CancellationToken ct) =>
        await _collection.Find(ToFilter(filter)).FirstOrDefaultAsync(ct).ConfigureAwait(false);

    public Task<long> CountAsync(Expression<Func<T, bool>> filter, CancellationToken ct) =>
        _collection.CountDocumentsAsync(ToFilter(filter), cancellationToken: ct);

    public Task ReplaceAsync(T doc, CancellationToken ct) => ReplaceAsync(null, doc, ct);

    private async Task ReplaceAsync(IClientSessionHandle? session, T doc, CancellationToken ct)
    {
        var id = MemberPaths.RequireId(doc);
        var expected = doc.Version;
        if (!await TryReplaceAsync(doc, expected, ct, session).ConfigureAwait(false))
        {
            var find = session is null ? _collection.Find(ById(id)) : _collection.Find(session, ById(id));
            var exists = await find.Limit(1).CountDocumentsAsync(ct).ConfigureAwait(false) > 0;
            throw exists
                ? new ConcurrencyConflictException(Name, id, expected)
                : new DocumentNotFoundException(Name, id);
        }
    }

    public async Task<long> IncrementAsync(string id, Expression<Func<T, long>> field, long by, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        var updated = await _collection.FindOneAndUpdateAsync(
            ById(id),
            IncrementUpdate(field, by),
            new FindOneAndUpdateOptions<T> { ReturnDocument = ReturnDocument.After },
            ct).ConfigureAwait(false);
        return updated is null
            ? throw new DocumentNotFoundException(Name, id)
            : MemberPaths.Getter(field)(updated);
    }

    public async Task<T?> FindOneAndUpdateAsync(Expression<Func<T, bool>> filter, Action<T> update, FindOptions<T>? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(update);
        var first = (options ?? new FindOptions<T>()) with { Limit = 1 };
        // Optimistic claim: read the first candidate, write it back only if nobody changed it meanwhile,
        // otherwise look again (the winner's update usually takes it out of the filter).
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var candidate = await Query(filter, first).FirstOrDefaultAsync(ct).ConfigureAwait(false);
            if (candidate is null)
            {
                return null;
            }

            var version = candidate.Version;
            update(candidate);
            if (await TryReplaceAsync(candidate, version, ct).ConfigureAwait(false))
            {
                return candidate;
            }
        }
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        var result = await _collection.DeleteOneAsync(ById(id), ct).ConfigureAwait(false);
        return result.DeletedCount > 0;
    }

    public async Task<long> DeleteManyAsync(Expression<Func<T, bool>> filter, CancellationToken ct)
    {
        var result = await _collection.DeleteManyAsync(ToFilter(filter), ct).ConfigureAwait(false);
        return result.DeletedCount;
    }

    public async Task EnsureIndexAsync(Expression<Func<T, object?>> field, bool unique = false, TimeSpan? expireAfter = null, CancellationToken ct = default)
    {
        var type = MemberPaths.Body(field).Type;
        if (expireAfter is not null && type != typeof(DateTime) && type != typeof(DateTime?))
        {
            throw new ArgumentException($"A TTL index needs a DateTime field; '{field}' is {type.Name}.", nameof(field));
        }

        var keys = Builders<T>.IndexKeys.Ascending(new ExpressionFieldDefinition<T>(field));
        var options = new CreateIndexOptions { Unique = unique, ExpireAfter = expireAfter };
        await _collection.Indexes.CreateOneAsync(new CreateIndexModel<T>(keys, options), cancellationToken: ct).ConfigureAwait(false);
    }

    private static string VersionElementName()
    {
        // Class maps freeze on first lookup, so the conventions must be in place before.
        MongoMapping.EnsureRegistered();
        return BsonClassMap.LookupClassMap(typeof(T)).GetMemberMap(nameof(IDocument.Version))?.ElementName ?? nameof(IDocument.Version);
    }

    private static FilterDefinition<T> ById(string id) => Filter.Eq(IdField, id);

    internal static FilterDefinition<T> ToFilter(Expression<Func<T, bool>> filter) => Filter.Where(FilterNormalizer.Normalize(filter));

    internal static SortDefinition<T>? ToSort(FindOptions<T> options) =>
        options.Sort.Count == 0
            ? null
            : Builders<T>.Sort.Combine(options.Sort.Select(key => key.Descending
                ? Builders<T>.Sort.Descending(new ExpressionFieldDefinition<T>(key.Field))
                : Builders<T>.Sort.Ascending(new ExpressionFieldDefinition<T>(key.Field))));

    /// <summary>Adds to the field and bumps the version in one update, so stale copies cannot overwrite the increment.</summary>
    internal static UpdateDefinition<T> IncrementUpdate(Expression<Func<T, long>> field, long by) =>
        Builders<T>.Update.Inc(new ExpressionFieldDefinition<T, long>(field), by).Inc(VersionField, 1L);

    private IFindFluent<T, T> Query(Expression<Func<T, bool>> filter, FindOptions<T>? options)
    {
        var find = _collection.Find(ToFilter(filter));
        if (options is null)
        {
            return find;
        }

        if (ToSort(options) is { } sort)
        {
            find = find.Sort(sort);
        }

        if (options.Offset > 0)
        {
            find = find.Skip(options.Offset);
        }

        return options.Limit is { } limit ? find.Limit(limit) : find;
    }

    /// <summary>Writes <paramref name="doc"/> at <paramref name="expected"/>+1 if the stored version is still <paramref name="expected"/>.</summary>
    private async Task<bool> TryReplaceAsync(T doc, long expected, CancellationToken ct, IClientSessionHandle? session = null)
    {
        doc.Version = expected + 1;
        try
        {
            var filter = ById(doc.Id) & Filter.Eq(VersionField, expected);
            var result = session is null
                ? await _collection.ReplaceOneAsync(filter, doc, cancellationToken: ct).ConfigureAwait(false)
                : await _collection.ReplaceOneAsync(session, filter, doc, cancellationToken: ct).ConfigureAwait(false);
            if (result.MatchedCount == 0)
            {
                doc.Version = expected;
                return false;
            }

            return true;
        }
        catch (MongoWriteException ex) when (ex.WriteError?.Category == ServerErrorCategory.DuplicateKey)
        {
            doc.Version = expected;
            throw new DuplicateDocumentException(Name, doc.Id, ex);
        }
        catch
        {
            doc.Version = expected;
            throw;
        }
    }
}
