using System.Collections.Concurrent;
using System.Globalization;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LLMTune.Platform.Storage.LiteDb;

/// <summary>
/// The embedded store: one LiteDB file (or <c>:memory:</c>), safe for concurrent use from one process.
/// </summary>
/// <remarks>
/// Writes are serialised through one async lock so read-modify-write operations (replace with version check,
/// increment, claim) are atomic; reads run concurrently on LiteDB's own locking.
/// LiteDB has no TTL index: a background sweep deletes expired documents every <c>ttlSweepInterval</c>,
/// so expiry is eventual, as with MongoDB's TTL monitor.
/// </remarks>
public sealed class LiteDbDocumentStore : IDocumentStore, IDisposable
{
    public const string InMemory = ":memory:";

    private readonly LiteDatabase _database;
    private readonly ConcurrentDictionary<(string, Type), object> _collections = new();
    private readonly HashSet<Type> _mappedTypes = [];
    private readonly ConcurrentDictionary<(string Collection, string Field), TimeSpan> _expiries = new();
    private readonly ConcurrentDictionary<string, long> _changeStamps = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ITimer _sweepTimer;
    private readonly ILogger _logger;
    private readonly string? _file;
    private int _disposed;

    public LiteDbDocumentStore(string path, TimeSpan? ttlSweepInterval = null, TimeProvider? time = null, ILogger<LiteDbDocumentStore>? logger = null)
    {
        _logger = logger ?? NullLogger<LiteDbDocumentStore>.Instance;
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (path != InMemory)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
        }

        _file = path == InMemory ? null : Path.GetFullPath(path);
        Mapper = CreateMapper();
        _database = new LiteDatabase(
            new ConnectionString
            {
                Filename = path,
                Connection = ConnectionType.Direct,
                // Ordinal, case-sensitive string comparison like MongoDB (LiteDB's default ignores case).
                // Only applied when the file is created.
                Collation = new Collation(CultureInfo.InvariantCulture.LCID, CompareOptions.Ordinal),
            },
            Mapper);
        _database.UtcDate = true;
        _time = time ?? TimeProvider.System;
        var interval = ttlSweepInterval ?? TimeSpan.FromSeconds(30);
        _sweepTimer = _time.CreateTimer(_ => SweepExpiredQuietly(), null, interval, interval);
    }

    /// <summary>
    /// The file is opened in LiteDB's direct (exclusive) mode: no other process writes it. False makes code treat it
    /// like a shared database (the paths MongoDB takes), so tests run those paths on a machine without MongoDB.
    /// </summary>
    public bool IsExclusive { get; init; } = true;

    internal BsonMapper Mapper { get; }

    /// <summary>
    /// Called under <see cref="WriteLock"/> before every write. LiteDB does not fail a write its disk refuses (a
    /// read-only or immutable file): its writer stops and the caller waits for good. Opening the file for writing
    /// first turns that into a prompt <see cref="StoreUnavailableException"/> with nothing written.
    /// </summary>
    internal void EnsureWritable()
    {
        if (_file is null)
        {
            return;
        }

        try
        {
            using var handle = File.OpenHandle(_file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        }
        catch (Exception e) when (StoreUnavailableException.IsStoreFault(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>The disk refused a write: answered 503 by the error handler.</summary>
    internal static StoreUnavailableException Unavailable(Exception e) =>
        new($"The embedded store could not write its file ({e.GetType().Name}: {e.Message}); nothing was stored.", e);

    /// <summary>A rollback after a disk failure may fail the same way; the transaction is gone either way.</summary>
    private void RollbackQuietly()
    {
        try
        {
            _database.Rollback();
        }
        catch (Exception e) when (StoreUnavailableException.IsStoreFault(e))
        {
            _logger.LogWarning(e, "LiteDB rollback after a failed write failed as well");
        }
    }

    internal LiteDatabase Database => _database;

    public long? ChangeStamp(string collection) => IsExclusive ? _changeStamps.GetValueOrDefault(collection) : null;

    /// <summary>
    /// Called after every write (also a failed one: a needless re-read costs little), never before, so a reader that
    /// saw the old stamp reads again after the write.
    /// </summary>
    internal void Changed(string collection) => _changeStamps.AddOrUpdate(collection, 1, (_, stamp) => stamp + 1);

    /// <summary>Serialises writes; see the class remarks.</summary>
    internal SemaphoreSlim WriteLock { get; } = new(1, 1);

    internal TimeProvider Time => _time;

    public IDocumentCollection<T> Collection<T>(string name) where T : class, IDocument
    {
        MemberPaths.ValidateCollectionName(name);
        if (_collections.TryGetValue((name, typeof(T)), out var existing))
        {
            return (IDocumentCollection<T>)existing;
        }

        // First use of this collection: its types' mappers are complete before anyone can query through it.
        lock (_mappedTypes)
        {
            LiteDbMapperWarmUp.Prepare(Mapper, typeof(T), _mappedTypes);
            CreateIfMissing(name);
            return (IDocumentCollection<T>)_collections.GetOrAdd((name, typeof(T)), _ => new LiteDbDocumentCollection<T>(this, name));
        }
    }

    /// <summary>
    /// LiteDB can fail a read of a collection while another transaction is creating it ("page type must be collection
    /// page", litedb-org/LiteDB#2792) and then refuses every later call. So a collection is created here, under the
    /// write lock, before anyone can read or write through it.
    /// </summary>
    private void CreateIfMissing(string name)
    {
        if (_database.CollectionExists(name))
        {
            return;
        }

        // Nothing takes a collection while holding the write lock; the timeout only keeps a mistake from hanging.
        if (!WriteLock.Wait(TimeSpan.FromSeconds(30)))
        {
            _logger.LogWarning("Collection {Collection} not created ahead of use: the store's write lock stayed taken", name);
            return;
        }

        try
        {
            if (_database.CollectionExists(name))
            {
                return;
            }

            EnsureWritable();
            var collection = _database.GetCollection(name);
            var placeholder = new BsonValue("__llmtune_create");
            collection.Upsert(placeholder, new BsonDocument());
            collection.Delete(placeholder);
        }
        catch (Exception e) when (e is StoreUnavailableException || StoreUnavailableException.IsStoreFault(e))
        {
            // A read-only store: nothing can create the collection, so nothing can race a read with its creation either.
        }
        finally
        {
            WriteLock.Release();
        }
    }

    public Task PingAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        // Reading a pragma touches the engine without scanning data.
        _ = _database.UserVersion;
        return Task.CompletedTask;
    }

    public async Task CommitAsync(WriteBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var targets = batch.Operations.Select(o => o.Collection is ILiteDbBatchTarget target && ReferenceEquals(target.Store, this)
            ? target
            : throw new ArgumentException("Every collection of a batch must come from the store that commits it.", nameof(batch))).ToList();
        if (targets.Count == 0)
        {
            return;
        }

        var versions = batch.SaveVersions();
        await WriteLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            EnsureWritable();
            // LiteDB binds a transaction to the thread that began it: nothing below awaits, so it stays on this one.
            if (!_database.BeginTrans())
            {
                throw new InvalidOperationException("A LiteDB transaction is already open on this thread.");
            }

            try
            {
                for (var i = 0; i < targets.Count; i++)
                {
                    targets[i].Apply(batch.Operations[i]);
                }

                _database.Commit();
            }
            catch (Exception e)
            {
                RollbackQuietly();
                batch.RestoreVersions(versions);
                if (StoreUnavailableException.IsStoreFault(e))
                {
                    throw Unavailable(e);
                }

                throw;
            }
            finally
            {
                foreach (var target in targets)
                {
                    Changed(target.Name);
                }
            }
        }
        finally
        {
            WriteLock.Release();
        }
    }

    internal void RegisterExpiry(string collection, string fieldPath, TimeSpan expireAfter) =>
        _expiries[(collection, fieldPath)] = expireAfter;

    /// <summary>Deletes every document whose TTL field plus its expiry lies in the past; returns how many.</summary>
    public async Task<int> SweepExpiredAsync(CancellationToken ct = default)
    {
        var deleted = 0;
        var now = _time.GetUtcNow().UtcDateTime;
        foreach (var ((collection, field), expireAfter) in _expiries)
        {
            var cutoff = now - expireAfter;
            // The lower bound keeps null/missing values alive: LiteDB orders values by type first and null below every date.
            var predicate = BsonExpression.Create($"{field} >= @0 AND {field} < @1", new BsonValue(DateTime.MinValue), new BsonValue(cutoff));
            await WriteLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                EnsureWritable();
                deleted += _database.GetCollection(collection).DeleteMany(predicate);
            }
            finally
            {
                Changed(collection);
                WriteLock.Release();
            }
        }

        return deleted;
    }

    private void SweepExpiredQuietly()
    {
        if (Volatile.Read(ref _disposed) != 0 || _expiries.IsEmpty)
        {
            return;
        }

        try
        {
            SweepExpiredAsync().GetAwaiter().GetResult();
        }
        catch (ObjectDisposedException)
        {
            // The store closed while a sweep was due.
        }
        catch (Exception ex)
        {
            // A failed sweep must not take the process down; the next one retries.
            _logger.LogWarning(ex, "Deleting expired documents failed");
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _sweepTimer.Dispose();
        WriteLock.Wait();
        try
        {
            _database.Dispose();
        }
        finally
        {
            WriteLock.Release();
        }
    }

    private static BsonMapper CreateMapper()
    {
        var mapper = new BsonMapper
        {
            // Store exactly what the caller gave, like MongoDB does.
            TrimWhitespace = false,
            EmptyStringToNull = false,
            EnumAsInteger = false,
            SerializeNullValues = true,
        };
        // MongoDB keeps milliseconds; truncate here too so a document reads back the same on both stores.
        mapper.RegisterType(
            serialize: (DateTime value) => new BsonValue(TruncateToMilliseconds(value)),
            deserialize: bson => DateTime.SpecifyKind(bson.AsDateTime.ToUniversalTime(), DateTimeKind.Utc));
        return mapper;
    }

    private static DateTime TruncateToMilliseconds(DateTime value)
    {
        if (value == DateTime.MinValue || value == DateTime.MaxValue)
        {
            return value;
        }

        var utc = value.Kind == DateTimeKind.Utc ? value : value.ToUniversalTime();
        return new DateTime(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);
    }
}
