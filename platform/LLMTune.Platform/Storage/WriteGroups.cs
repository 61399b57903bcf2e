using System.Threading.Channels;

namespace LLMTune.Platform.Storage;

/// <summary>
/// Hands queued items to one writer in groups: items queued while a group is being written go together in the next
/// (one store transaction for many callers). The first group is written on its caller's thread, so an item queued
/// alone costs no thread-pool hop; later groups run off it. The writer answers each item itself.
/// </summary>
/// <remarks>
/// With a <paramref name="window"/>, the first group waits that long (off the caller's thread) for more items: for
/// background writes nobody is waiting on, so that light traffic shares transactions too, not only heavy traffic.
/// </remarks>
public sealed class WriteGroups<T>(Func<List<T>, Task> writeGroup, int maxGroup, TimeSpan window = default)
{
    private readonly Channel<T> _queue = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });
    private int _draining;

    public void Add(T item)
    {
        _queue.Writer.TryWrite(item);
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            _ = DrainAsync();
        }
    }

    private async Task DrainAsync()
    {
        var group = new List<T>(maxGroup);
        for (var round = 0; ; round++)
        {
            if (round == 0 && window > TimeSpan.Zero)
            {
                await Task.Delay(window).ConfigureAwait(false);
            }
            else if (round == 1)
            {
                await Task.Yield(); // later groups are others' items: off the first caller's thread
            }

            group.Clear();
            while (group.Count < maxGroup && _queue.Reader.TryRead(out var item))
            {
                group.Add(item);
            }

            if (group.Count == 0)
            {
                Volatile.Write(ref _draining, 0);
                // An item queued after the last read but before the flag dropped would wait forever: take it on.
                if (_queue.Reader.TryPeek(out _) && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
                {
                    continue;
                }

                return;
            }

            await writeGroup(group);
        }
    }
}
