namespace LLMTune.Platform.Storage;

/// <summary>Base of the store's own failures, so callers can map them to HTTP statuses in one place.</summary>
public abstract class StorageException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>An insert or replace clashed with an existing id or a unique-indexed value (maps to 409).</summary>
public sealed class DuplicateDocumentException(string collection, string id, Exception? inner = null)
    : StorageException($"Document '{id}' in '{collection}' clashes with an existing id or unique value.", inner)
{
    public string Collection { get; } = collection;

    public string DocumentId { get; } = id;
}

/// <summary>A replace found the stored document at a different version than the caller read (maps to 409, or retry).</summary>
public sealed class ConcurrencyConflictException(string collection, string id, long expectedVersion)
    : StorageException($"Document '{id}' in '{collection}' was changed by someone else (expected version {expectedVersion}).")
{
    public string Collection { get; } = collection;

    public string DocumentId { get; } = id;

    public long ExpectedVersion { get; } = expectedVersion;
}

/// <summary>An update addressed a document id that does not exist.</summary>
public sealed class DocumentNotFoundException(string collection, string id)
    : StorageException($"Document '{id}' does not exist in '{collection}'.")
{
    public string Collection { get; } = collection;

    public string DocumentId { get; } = id;
}

/// <summary>
/// The store could not write (its disk is read-only or full, the file is locked, the server unreachable): nothing of
/// the operation was stored. Answered 503 <c>store_unavailable</c> with Retry-After; the caller may retry as is.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception inner) : StorageException(message, inner)
{
    /// <summary>The failures that mean the medium refused the write, not that the operation was wrong.</summary>
    public static bool IsStoreFault(Exception e) => e is IOException or UnauthorizedAccessException
        || (e is LiteDB.LiteException && e.InnerException is IOException or UnauthorizedAccessException);
}
