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
