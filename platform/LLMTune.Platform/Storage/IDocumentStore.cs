using System.Linq.Expressions;

namespace LLMTune.Platform.Storage;

/// <summary>
/// A stored document: a plain class with a string <c>Id</c> (stored as <c>_id</c>) and a
/// <c>Version</c> that the store bumps on every write, for optimistic concurrency.
/// </summary>
/// <remarks>
/// Use classes (or records) with settable/init properties and a parameterless constructor;
/// keep <see cref="DateTime"/> values in UTC (both stores keep millisecond precision and read back UTC).
/// Enums are stored by name.
/// </remarks>
public interface IDocument
{
    string Id { get; }

    long Version { get; set; }
}

/// <summary>A document database: MongoDB in split mode, an embedded LiteDB file in single-process mode.</summary>
public interface IDocumentStore
{
    /// <summary>
    /// A named collection of <typeparamref name="T"/>. Names must match <c>[A-Za-z][A-Za-z0-9_]*</c>
    /// so they are valid on both stores.
    /// </summary>
    IDocumentCollection<T> Collection<T>(string name) where T : class, IDocument;

    /// <summary>
    /// Whether this store object is the only writer of its data (the embedded file is opened exclusively by one
    /// process): state kept in memory next to it, such as hot counters, is then exact. False for shared databases.
    /// </summary>
    bool IsExclusive => false;

    /// <summary>
    /// On an exclusive store, a number that changes after every write to <paramref name="collection"/> (null on shared
    /// stores, which other processes write): a copy of rarely written data held in memory stays exact by reading again
    /// only when it changed.
    /// </summary>
    long? ChangeStamp(string collection) => null;

    /// <summary>
    /// Writes every operation of <paramref name="batch"/> atomically: all of them or, when one throws, none.
    /// Collections must come from this store.
    /// </summary>
    /// <exception cref="DuplicateDocumentException">An insert's id or a unique-indexed value is taken.</exception>
    /// <exception cref="ConcurrencyConflictException">A replaced document changed since it was read.</exception>
    /// <exception cref="DocumentNotFoundException">A replaced document does not exist.</exception>
    Task CommitAsync(WriteBatch batch, CancellationToken ct);

    /// <summary>Throws when the store is unreachable.</summary>
    Task PingAsync(CancellationToken ct);
}

/// <summary>
/// The operations every store supports with the same semantics (one contract test suite checks both).
/// Filters are LINQ predicates: equality, <c>&amp;&amp;</c>, <c>||</c>, <c>!</c>, comparisons on numbers
/// and <see cref="DateTime"/>, string and enum equality, null checks, <c>list.Contains(x.Field)</c>
/// and <c>x.ListField.Contains(value)</c>.
/// </summary>
public interface IDocumentCollection<T> where T : class, IDocument
{
    string Name { get; }

    /// <summary>Inserts a new document as given (its <c>Version</c> is stored unchanged, normally 0).</summary>
    /// <exception cref="DuplicateDocumentException">The id or a unique-indexed value is taken.</exception>
    Task InsertAsync(T doc, CancellationToken ct);

    Task<T?> GetAsync(string id, CancellationToken ct);

    Task<IReadOnlyList<T>> FindAsync(Expression<Func<T, bool>> filter, FindOptions<T>? options, CancellationToken ct);

    Task<T?> FindOneAsync(Expression<Func<T, bool>> filter, CancellationToken ct);

    Task<long> CountAsync(Expression<Func<T, bool>> filter, CancellationToken ct);

    /// <summary>
    /// Replaces the stored document only if its <c>Version</c> still equals <c>doc.Version</c>;
    /// on success <c>doc.Version</c> is incremented to the stored value.
    /// </summary>
    /// <exception cref="ConcurrencyConflictException">Someone else wrote the document since it was read.</exception>
    /// <exception cref="DocumentNotFoundException">No document has this id.</exception>
    /// <exception cref="DuplicateDocumentException">A unique-indexed value is taken by another document.</exception>
    Task ReplaceAsync(T doc, CancellationToken ct);

    /// <summary>Atomically adds <paramref name="by"/> to a <see cref="long"/> field (and bumps <c>Version</c>); returns the new value.</summary>
    /// <exception cref="DocumentNotFoundException">No document has this id.</exception>
    Task<long> IncrementAsync(string id, Expression<Func<T, long>> field, long by, CancellationToken ct);

    /// <summary>
    /// Atomically picks the first document matching <paramref name="filter"/> (in <paramref name="options"/>' sort order),
    /// applies <paramref name="update"/>, bumps <c>Version</c> and stores it; returns the updated document, or null
    /// when nothing matches. Two callers never get the same document for a filter the update makes false:
    /// the claim/lease primitive for job workers.
    /// </summary>
    Task<T?> FindOneAndUpdateAsync(Expression<Func<T, bool>> filter, Action<T> update, FindOptions<T>? options, CancellationToken ct);

    /// <summary>Deletes by id; false when there was nothing to delete.</summary>
    Task<bool> DeleteAsync(string id, CancellationToken ct);

    /// <summary>Deletes every matching document; returns how many.</summary>
    Task<long> DeleteManyAsync(Expression<Func<T, bool>> filter, CancellationToken ct);

    /// <summary>
    /// Creates an index on a field if missing (idempotent). With <paramref name="expireAfter"/> the field must be a
    /// <see cref="DateTime"/>: a document is deleted some time after <c>field + expireAfter</c> has passed
    /// (MongoDB: its TTL monitor, about every 60 s; LiteDB: the store's sweep, <c>Storage:LiteDbTtlSweepInterval</c>).
    /// Expiry is eventual: readers that need an exact cut-off must also filter on the field.
    /// Documents whose field is null or missing never expire.
    /// </summary>
    Task EnsureIndexAsync(Expression<Func<T, object?>> field, bool unique = false, TimeSpan? expireAfter = null, CancellationToken ct = default);
}
