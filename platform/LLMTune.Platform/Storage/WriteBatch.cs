namespace LLMTune.Platform.Storage;

/// <summary>
/// Inserts and replaces, possibly in several collections, that <see cref="IDocumentStore.CommitAsync"/> writes
/// all together or not at all: a state change and the events that announce it (see <c>EventOutbox</c>).
/// </summary>
/// <remarks>
/// Each operation keeps the semantics of its single-document counterpart (duplicate ids, version checks). The first
/// failing operation rolls the whole batch back and its exception is thrown; versions of replaced documents are
/// left as they were before the commit. LiteDB commits one transaction in its file; MongoDB a multi-document
/// transaction, which needs a replica set (a single-node one is enough) once a batch holds more than one write.
/// </remarks>
public sealed class WriteBatch
{
    private readonly List<BatchOperation> _operations = [];

    internal IReadOnlyList<BatchOperation> Operations => _operations;

    public int Count => _operations.Count;

    /// <summary>Inserts <paramref name="doc"/> as <see cref="IDocumentCollection{T}.InsertAsync"/> does.</summary>
    public WriteBatch Insert<T>(IDocumentCollection<T> collection, T doc) where T : class, IDocument
    {
        ArgumentNullException.ThrowIfNull(collection);
        MemberPaths.RequireId(doc);
        _operations.Add(new BatchOperation(BatchOperationKind.Insert, collection, doc));
        return this;
    }

    /// <summary>Replaces <paramref name="doc"/> if its stored version still equals <c>doc.Version</c>, as <see cref="IDocumentCollection{T}.ReplaceAsync"/> does.</summary>
    public WriteBatch Replace<T>(IDocumentCollection<T> collection, T doc) where T : class, IDocument
    {
        ArgumentNullException.ThrowIfNull(collection);
        MemberPaths.RequireId(doc);
        _operations.Add(new BatchOperation(BatchOperationKind.Replace, collection, doc));
        return this;
    }

    /// <summary>Remembers every document's version so a failed commit can put them back.</summary>
    internal long[] SaveVersions() => [.. _operations.Select(o => o.Document.Version)];

    internal void RestoreVersions(long[] versions)
    {
        for (var i = 0; i < _operations.Count; i++)
        {
            _operations[i].Document.Version = versions[i];
        }
    }
}

internal enum BatchOperationKind
{
    Insert,
    Replace,
}

/// <summary>One write of a batch; the collection is the store's own implementation, which knows how to apply it.</summary>
internal sealed record BatchOperation(BatchOperationKind Kind, object Collection, IDocument Document);
