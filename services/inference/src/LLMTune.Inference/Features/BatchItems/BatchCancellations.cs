using System.Collections.Concurrent;
using LLMTune.Contracts;
using LLMTune.Platform.Bus;
using MassTransit;

namespace LLMTune.Inference.Features.BatchItems;

/// <summary>
/// The batches cancelled while this replica runs their items: each running item's token is cancelled when its batch is,
/// and an item of a batch cancelled a moment ago (its request was already on its way) does not start.
/// </summary>
public sealed class BatchCancellations(TimeProvider time)
{
    /// <summary>How long a cancelled batch is remembered for requests still on their way.</summary>
    private static readonly TimeSpan Memory = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _cancelled = new(StringComparer.Ordinal);

    public bool IsCancelled(string batchId) => _cancelled.ContainsKey(batchId);

    /// <summary>A token cancelled when the item's batch is; dispose the registration when the item ends.</summary>
    public Registration Track(string batchId, string itemKey, CancellationToken ct)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _running[itemKey] = source;
        if (IsCancelled(batchId))
        {
            source.Cancel();
        }

        return new Registration(this, itemKey, batchId, source);
    }

    public void Cancel(string batchId)
    {
        var now = time.GetUtcNow();
        _cancelled[batchId] = now;
        foreach (var (key, expiry) in _cancelled)
        {
            if (now - expiry > Memory)
            {
                _cancelled.TryRemove(key, out _);
            }
        }

        foreach (var (itemKey, source) in _running)
        {
            if (itemKey.StartsWith(batchId + "-", StringComparison.Ordinal))
            {
                try
                {
                    source.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // the item ended meanwhile
                }
            }
        }
    }

    public sealed class Registration(BatchCancellations owner, string itemKey, string batchId, CancellationTokenSource source) : IDisposable
    {
        public CancellationToken Token => source.Token;

        /// <summary>The item stopped because its batch was cancelled (not because this replica is stopping).</summary>
        public bool BatchCancelled => source.IsCancellationRequested && owner.IsCancelled(batchId);

        public void Dispose()
        {
            owner._running.TryRemove(new KeyValuePair<string, CancellationTokenSource>(itemKey, source));
            source.Dispose();
        }
    }
}

/// <summary>Stops this replica's running items of a cancelled batch (every replica runs it: each has its own items).</summary>
public sealed class BatchCancelledConsumer(BatchCancellations cancellations) : IConsumer<BatchCancelled>
{
    public Task Consume(ConsumeContext<BatchCancelled> context)
    {
        cancellations.Cancel(context.Message.BatchId);
        return Task.CompletedTask;
    }
}

public sealed class BatchCancelledConsumerDefinition(BusInstance instance) : EveryInstanceConsumerDefinition<BatchCancelledConsumer>(instance);
