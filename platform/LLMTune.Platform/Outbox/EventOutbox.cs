using System.Text.Json;
using LLMTune.Platform.Storage;
using MassTransit;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Outbox;

/// <summary>
/// The one way LLMTune publishes events: an event is recorded in the store in the same write as the state change it
/// announces, and the <see cref="OutboxDispatcher"/> publishes it afterwards, retrying while the broker is away.
/// A request therefore never waits on the broker, and a crash or outage between the write and the publish loses nothing.
/// </summary>
/// <example>
/// <code>
/// await outbox.Write()
///     .Insert(jobs, job)
///     .Add(new TrainingQueued(...))
///     .CommitAsync(ct);
/// await outbox.PublishAsync(new InferenceCompleted(...), ct); // an event with no other state change
/// </code>
/// </example>
public sealed class EventOutbox(IDocumentStore store, OutboxSignal signal, TimeProvider time, IOptions<OutboxOptions>? options = null)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    internal IDocumentStore Store => store;

    internal IDocumentCollection<OutboxMessage> Messages { get; } = store.Collection<OutboxMessage>(OutboxMessage.Collection);

    /// <summary>Events recorded on their own, written together while a commit runs.</summary>
    private readonly GroupCommit<OutboxMessage> _alone = new(store, store.Collection<OutboxMessage>(OutboxMessage.Collection));

    /// <summary>Events nobody waits on, written together per <c>Outbox:GroupWindow</c>.</summary>
    private readonly GroupCommit<OutboxMessage> _background = new(store, store.Collection<OutboxMessage>(OutboxMessage.Collection),
        (options?.Value ?? new OutboxOptions()).GroupWindow);

    /// <summary>Starts an atomic write: documents and the events that announce them commit together.</summary>
    public OutboxWrite Write() => new(this);

    /// <summary>
    /// Records one event on its own (its only state is the event, e.g. usage); returns once it is stored. Such events
    /// recorded at the same time (concurrent requests' usage) share one commit.
    /// </summary>
    public Task PublishAsync<T>(T message, CancellationToken ct) where T : class => PublishAsync(_alone, message, ct);

    /// <summary>
    /// Records an event whose caller does not wait for it (usage of an answer already sent): written within
    /// <c>Outbox:GroupWindow</c>, in one commit with every other such event recorded meanwhile.
    /// </summary>
    public Task PublishInBackgroundAsync<T>(T message) where T : class => PublishAsync(_background, message, CancellationToken.None);

    private async Task PublishAsync<T>(GroupCommit<OutboxMessage> group, T message, CancellationToken ct) where T : class
    {
        ct.ThrowIfCancellationRequested();
        var record = Record(message);
        if (!await group.InsertAsync(record).ConfigureAwait(false))
        {
            throw new DuplicateDocumentException(OutboxMessage.Collection, record.Id);
        }

        signal.Notify();
    }

    internal OutboxMessage Record<T>(T message) where T : class
    {
        ArgumentNullException.ThrowIfNull(message);
        var type = message.GetType();
        var now = time.GetUtcNow().UtcDateTime;
        return new OutboxMessage
        {
            Id = NewId.NextGuid().ToString("N"),
            MessageType = TypeName(type),
            Body = JsonSerializer.Serialize(message, type, Json),
            CreatedAt = now,
            DueAt = now,
        };
    }

    internal async Task CommitAsync(WriteBatch batch, bool hasEvents, CancellationToken ct)
    {
        await store.CommitAsync(batch, ct).ConfigureAwait(false);
        if (hasEvents)
        {
            signal.Notify();
        }
    }

    internal static string TypeName(Type type) => $"{type.FullName}, {type.Assembly.GetName().Name}";
}

/// <summary>One atomic write of documents and events; see <see cref="EventOutbox"/>.</summary>
public sealed class OutboxWrite
{
    private readonly EventOutbox _outbox;
    private readonly WriteBatch _batch = new();
    private int _events;

    internal OutboxWrite(EventOutbox outbox) => _outbox = outbox;

    public OutboxWrite Insert<T>(IDocumentCollection<T> collection, T doc) where T : class, IDocument
    {
        _batch.Insert(collection, doc);
        return this;
    }

    /// <summary>Replaces with the version check of <see cref="IDocumentCollection{T}.ReplaceAsync"/>.</summary>
    public OutboxWrite Replace<T>(IDocumentCollection<T> collection, T doc) where T : class, IDocument
    {
        _batch.Replace(collection, doc);
        return this;
    }

    /// <summary>The event, published once (and only if) this write commits.</summary>
    public OutboxWrite Add<T>(T message) where T : class
    {
        _batch.Insert(_outbox.Messages, _outbox.Record(message));
        _events++;
        return this;
    }

    /// <summary>Writes everything or nothing (exceptions as <see cref="IDocumentStore.CommitAsync"/>).</summary>
    public Task CommitAsync(CancellationToken ct) => _outbox.CommitAsync(_batch, _events > 0, ct);
}

/// <summary>Wakes the dispatcher when this process recorded an event, so it goes out without waiting for the next poll.</summary>
public sealed class OutboxSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Notify()
    {
        if (_signal.CurrentCount > 0)
        {
            return; // already signalled (checked first: a throw per recorded event is costly under load)
        }

        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Signalled meanwhile: one wake-up covers every event recorded since.
        }
    }

    internal Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);
}
