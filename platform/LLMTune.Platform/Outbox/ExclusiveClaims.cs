using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using LLMTune.Platform.Storage;

namespace LLMTune.Platform.Outbox;

/// <summary>
/// Ids being worked on, kept in memory beside an exclusive store (one set per store object and kind of work, so hosts
/// in one process share it): what a lease in the store is on a shared one. A crash forgets them with the process that
/// held them, as a lapsed lease would.
/// </summary>
internal sealed class ExclusiveClaims
{
    private static readonly ConditionalWeakTable<IDocumentStore, ConcurrentDictionary<string, ExclusiveClaims>> ByStore = [];

    private readonly HashSet<string> _held = new(StringComparer.Ordinal);

    /// <summary>The claims of one kind of work (the outbox's events, the inbox's messages) on <paramref name="store"/>.</summary>
    public static ExclusiveClaims For(IDocumentStore store, string kind) =>
        ByStore.GetValue(store, _ => new(StringComparer.Ordinal)).GetOrAdd(kind, _ => new ExclusiveClaims());

    /// <summary>False when another holds it.</summary>
    public bool TryTake(string id)
    {
        lock (_held)
        {
            return _held.Add(id);
        }
    }

    public void Release(string id) => Release([id]);

    public void Release(IEnumerable<string> ids)
    {
        lock (_held)
        {
            foreach (var id in ids)
            {
                _held.Remove(id);
            }
        }
    }
}
