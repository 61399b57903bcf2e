using System.Globalization;
using System.Linq.Expressions;
using LiteDB;

namespace LLMTune.Platform.Storage.LiteDb;

/// <summary>A collection that can apply the writes of a <see cref="WriteBatch"/> inside its store's transaction.</summary>
internal interface ILiteDbBatchTarget
{
    LiteDbDocumentStore Store { get; }

    string Name { get; }

    void Apply(BatchOperation operation);
}

internal sealed class LiteDbDocumentCollection<T> : IDocumentCollection<T>, ILiteDbBatchTarget where T : class, IDocument
{
    private readonly LiteDbDocumentStore _store;
    private readonly ILiteCollection<T> _typed;
    private readonly ILiteCollection<BsonDocument> _raw;

    public LiteDbDocumentCollection(LiteDbDocumentStore store, string name)
    {
        _store = store;
        Name = name;
        _typed = store.Database.GetCollection<T>(name, BsonAutoId.ObjectId);
        _raw = store.Database.GetCollection(name, BsonAutoId.ObjectId);
    }

    public string Name { get; }

    public Task InsertAsync(T doc, CancellationToken ct)
    {
        MemberPaths.RequireId(doc);
        return WriteAsync(() =>
        {
            Insert(doc);
            return true;
        }, ct);
    }

    public Task<T?> GetAsync(string id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<T?>(_typed.FindById(new BsonValue(id)));
    }

    public Task<IReadOnlyList<T>> FindAsync(Expression<Func<T, bool>> filter, FindOptions<T>? options, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(Find(filter, options));
    }

    public Task<T?> FindOneAsync(Expression<Func<T, bool>> filter, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<T?>(_typed.FindOne(FilterNormalizer.Normalize(filter)));
    }

    public Task<long> CountAsync(Expression<Func<T, bool>> filter, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(_typed.LongCount(FilterNormalizer.Normalize(filter)));
    }

    public Task ReplaceAsync(T doc, CancellationToken ct)
    {
        MemberPaths.RequireId(doc);
        return WriteAsync(() =>
        {
            Replace(doc);
            return true;
        }, ct);
    }

    public Task<long> IncrementAsync(string id, Expression<Func<T, long>> field, long by, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        var get = MemberPaths.Getter(field);
        var set = MemberPaths.Setter(field);
        return WriteAsync(() =>
        {
            var doc = _typed.FindById(new BsonValue(id)) ?? throw new DocumentNotFoundException(Name, id);
            var value = get(doc) + by;
            set(doc, value);
            doc.Version++;
            _typed.Update(doc);
            return value;
        }, ct);
    }

    public Task<T?> FindOneAndUpdateAsync(Expression<Func<T, bool>> filter, Action<T> update, FindOptions<T>? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(update);
        var first = (options ?? new FindOptions<T>()) with { Limit = 1 };
        return WriteAsync(() =>
        {
            var doc = Find(filter, first).FirstOrDefault();
            if (doc is null)
            {
                return null;
            }

            var version = doc.Version;
            update(doc);
            doc.Version = version + 1;
            try
            {
                _typed.Update(doc);
            }
            catch (LiteException ex) when (ex.ErrorCode == LiteException.INDEX_DUPLICATE_KEY)
            {
                throw new DuplicateDocumentException(Name, doc.Id, ex);
            }

            return doc;
        }, ct);
    }

    public Task<bool> DeleteAsync(string id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        return WriteAsync(() => _typed.Delete(new BsonValue(id)), ct);
    }

    public Task<long> DeleteManyAsync(Expression<Func<T, bool>> filter, CancellationToken ct) =>
        WriteAsync(() => (long)_typed.DeleteMany(FilterNormalizer.Normalize(filter)), ct);

    public Task EnsureIndexAsync(Expression<Func<T, object?>> field, bool unique = false, TimeSpan? expireAfter = null, CancellationToken ct = default)
    {
        var path = _store.Mapper.GetExpression(field);
        var indexName = MemberPaths.Dotted(field).Replace('.', '_');
        if (expireAfter is { } ttl)
        {
            if (MemberPaths.Body(field).Type is var type && type != typeof(DateTime) && type != typeof(DateTime?))
            {
                throw new ArgumentException($"A TTL index needs a DateTime field; '{field}' is {type.Name}.", nameof(field));
            }

            ArgumentOutOfRangeException.ThrowIfLessThan(ttl, TimeSpan.Zero, nameof(expireAfter));
        }

        return WriteAsync(() =>
        {
            _raw.EnsureIndex(indexName, path, unique);
            if (expireAfter is { } after)
            {
                _store.RegisterExpiry(Name, path.Source, after);
            }

            return true;
        }, ct);
    }

    /// <summary>Applies one write of a <see cref="WriteBatch"/>; the caller holds the write lock and the transaction.</summary>
    void ILiteDbBatchTarget.Apply(BatchOperation operation)
    {
        var doc = (T)operation.Document;
        switch (operation.Kind)
        {
            case BatchOperationKind.Insert:
                Insert(doc);
                break;
            case BatchOperationKind.Replace:
                Replace(doc);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(operation), operation.Kind, "Unknown batch operation.");
        }
    }

    LiteDbDocumentStore ILiteDbBatchTarget.Store => _store;

    private void Insert(T doc)
    {
        try
        {
            _typed.Insert(doc);
        }
        catch (LiteException ex) when (ex.ErrorCode == LiteException.INDEX_DUPLICATE_KEY)
        {
            throw new DuplicateDocumentException(Name, doc.Id, ex);
        }
    }

    private void Replace(T doc)
    {
        var id = doc.Id;
        var stored = _raw.FindById(new BsonValue(id)) ?? throw new DocumentNotFoundException(Name, id);
        var version = stored[nameof(IDocument.Version)];
        // Documents written by hand (or by older code) may hold the version as a 32-bit number or not at all.
        var storedVersion = version.IsNumber ? Convert.ToInt64(version.RawValue, CultureInfo.InvariantCulture) : 0L;
        if (storedVersion != doc.Version)
        {
            throw new ConcurrencyConflictException(Name, id, doc.Version);
        }

        doc.Version = storedVersion + 1;
        try
        {
            _typed.Update(doc);
        }
        catch (LiteException ex) when (ex.ErrorCode == LiteException.INDEX_DUPLICATE_KEY)
        {
            doc.Version = storedVersion;
            throw new DuplicateDocumentException(Name, id, ex);
        }
    }

    private IReadOnlyList<T> Find(Expression<Func<T, bool>> filter, FindOptions<T>? options)
    {
        filter = FilterNormalizer.Normalize(filter);
        var sort = options?.Sort ?? [];
        var offset = options?.Offset ?? 0;
        var limit = options?.Limit ?? int.MaxValue;
        if (sort.Count <= 1)
        {
            // One key: LiteDB sorts (using an index when there is one) and limits natively.
            var query = _typed.Query().Where(filter);
            var ordered = sort.Count == 0
                ? query
                : query.OrderBy(_store.Mapper.GetExpression(sort[0].Field), sort[0].Descending ? Query.Descending : Query.Ascending);
            return ordered.Skip(offset).Limit(limit).ToList();
        }

        // LiteDB orders by one expression only; compound orders are applied in memory over the filtered documents.
        var keys = sort.Select(k => (Expression: _store.Mapper.GetExpression(k.Field), k.Descending)).ToArray();
        var collation = _store.Database.Collation;
        return _raw.Find(_store.Mapper.GetExpression(filter))
            .Select(doc => (Doc: doc, Keys: keys.Select(k => k.Expression.ExecuteScalar(doc, collation)).ToArray()))
            .Order(Comparer<(BsonDocument Doc, BsonValue[] Keys)>.Create((a, b) =>
            {
                for (var i = 0; i < keys.Length; i++)
                {
                    var compared = a.Keys[i].CompareTo(b.Keys[i], collation);
                    if (compared != 0)
                    {
                        return keys[i].Descending ? -compared : compared;
                    }
                }

                return 0;
            }))
            .Skip(offset)
            .Take(limit)
            .Select(x => _store.Mapper.ToObject<T>(x.Doc))
            .ToList();
    }

    private async Task<TResult> WriteAsync<TResult>(Func<TResult> write, CancellationToken ct)
    {
        await _store.WriteLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _store.EnsureWritable();
            return write();
        }
        catch (Exception e) when (StoreUnavailableException.IsStoreFault(e))
        {
            throw LiteDbDocumentStore.Unavailable(e);
        }
        finally
        {
            _store.Changed(Name);
            _store.WriteLock.Release();
        }
    }
}
