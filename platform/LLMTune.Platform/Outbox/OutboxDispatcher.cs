using System.Text.Json;
using LLMTune.Platform.Storage;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Outbox;

/// <summary>
/// Publishes recorded events in the order they became due, marks each sent, and backs off while the broker is away
/// (<c>Outbox:RetryMinDelay</c> doubling to <c>Outbox:RetryMaxDelay</c>). Replicas sharing a store claim each event
/// before publishing it; a claim whose holder died lapses and the event goes out again (with the same message id).
/// </summary>
public sealed class OutboxDispatcher(
    EventOutbox outbox,
    OutboxSignal signal,
    IBus bus,
    IOptions<OutboxOptions> options,
    TimeProvider time,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private readonly IDocumentCollection<OutboxMessage> _messages = outbox.Messages;
    private readonly Dictionary<string, Type?> _types = new(StringComparer.Ordinal);

    private OutboxOptions Options => options.Value;

    /// <summary>How long a claimed event is left to its dispatcher before another may publish it.</summary>
    private TimeSpan ClaimTimeout => Options.PublishTimeout * 3;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        var indexed = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!indexed)
                {
                    await _messages.EnsureIndexAsync(m => m.DueAt, ct: stoppingToken).ConfigureAwait(false);
                    await _messages.EnsureIndexAsync(m => m.SentAt, expireAfter: Options.SentRetention, ct: stoppingToken).ConfigureAwait(false);
                    indexed = true;
                }

                var sent = await DispatchDueAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
                if (sent < Options.BatchSize)
                {
                    await signal.WaitAsync(Options.PollInterval, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                var delay = RetryDelay(failures);
                if (failures == 1 || failures % 10 == 0)
                {
                    logger.LogWarning(e, "Outbox: publishing failed ({Failures} in a row); retrying in {Delay}", failures, delay);
                }

                try
                {
                    await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Publishes up to <c>Outbox:BatchSize</c> due events; returns how many went out. Throws on the first failure.</summary>
    /// <remarks>
    /// A round costs the same whatever its size: read the due events, claim them, and write what became of them (sent,
    /// parked, released) in one write. The claim is one write on a shared store; on a store that is the only writer of
    /// its data it is kept in memory (<see cref="ExclusiveClaims"/>, as the inbox keeps its own) and the claimed events are read again.
    /// </remarks>
    public async Task<int> DispatchDueAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var due = await _messages.FindAsync(m => m.DueAt <= now, FindOptions<OutboxMessage>.OrderBy(m => m.DueAt) with { Limit = Options.BatchSize }, ct)
            .ConfigureAwait(false);
        var claimed = await ClaimAsync(due, now, ct).ConfigureAwait(false);
        var handled = new List<OutboxMessage>(claimed.Count);
        try
        {
            foreach (var message in claimed)
            {
                try
                {
                    await PublishAsync(message, ct).ConfigureAwait(false);
                    message.SentAt = time.GetUtcNow().UtcDateTime;
                    message.DueAt = DateTime.MaxValue;
                    message.LastError = null;
                }
                catch (UnreadableMessageException e)
                {
                    // Retrying cannot fix it (e.g. a contract removed by an upgrade); parked for an operator, the rest go on.
                    logger.LogError("Outbox: {Error}; parked for a day", e.Message);
                    message.LastError = e.Message;
                    message.DueAt = time.GetUtcNow().UtcDateTime.AddDays(1);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    // Released with the rest of the round: due again once the dispatcher's back-off has passed.
                    message.LastError = $"{e.GetType().Name}: {e.Message}";
                    var released = claimed.Skip(handled.Count).ToList();
                    released.ForEach(m => m.DueAt = time.GetUtcNow().UtcDateTime);
                    handled.AddRange(released);
                    throw;
                }

                handled.Add(message);
            }
        }
        finally
        {
            try
            {
                await SaveAsync(handled, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                if (outbox.Store.IsExclusive)
                {
                    ExclusiveClaims.For(outbox.Store, OutboxMessage.Collection).Release(claimed.Select(m => m.Id));
                }
            }
        }

        return claimed.Count(m => m.SentAt is not null && m.DueAt == DateTime.MaxValue);
    }

    /// <summary>The due events this dispatcher now holds, in due order.</summary>
    private async Task<List<OutboxMessage>> ClaimAsync(IReadOnlyList<OutboxMessage> due, DateTime now, CancellationToken ct)
    {
        if (due.Count == 0)
        {
            return [];
        }

        if (outbox.Store.IsExclusive)
        {
            var claims = ExclusiveClaims.For(outbox.Store, OutboxMessage.Collection);
            var taken = due.Select(m => m.Id).Where(claims.TryTake).ToList();
            if (taken.Count == 0)
            {
                return [];
            }

            // Read again now that they are ours: another dispatcher may have published one after our read and before
            // it let go of it (it saves before it releases). One lookup by id each: a query "id in [...]" would scan
            // the whole collection, sent events included, on every round.
            var still = new List<OutboxMessage>(taken.Count);
            var read = 0;
            try
            {
                for (; read < taken.Count; read++)
                {
                    if (await _messages.GetAsync(taken[read], ct).ConfigureAwait(false) is { } message && message.DueAt <= now)
                    {
                        message.Attempts++; // written with the round's outcome, as a shared store writes it with the claim
                        still.Add(message);
                    }
                    else
                    {
                        claims.Release(taken[read]);
                    }
                }
            }
            catch
            {
                claims.Release(still.Select(m => m.Id).Concat(taken.Skip(read)));
                throw;
            }

            return still;
        }

        foreach (var message in due)
        {
            message.DueAt = now + ClaimTimeout;
            message.Attempts++;
        }

        var batch = new WriteBatch();
        foreach (var message in due)
        {
            batch.Replace(_messages, message);
        }

        try
        {
            await outbox.Store.CommitAsync(batch, ct).ConfigureAwait(false);
            return [.. due];
        }
        catch (Exception e) when (e is ConcurrencyConflictException or DocumentNotFoundException)
        {
            // Another dispatcher took some of them: claim the rest one by one.
        }

        var claimed = new List<OutboxMessage>();
        foreach (var message in due)
        {
            try
            {
                await _messages.ReplaceAsync(message, ct).ConfigureAwait(false);
                claimed.Add(message);
            }
            catch (Exception e) when (e is ConcurrencyConflictException or DocumentNotFoundException)
            {
                logger.LogDebug("Outbox message {MessageId} is claimed by another dispatcher", message.Id);
            }
        }

        return claimed;
    }

    /// <summary>Stores what the round did to its events (sent, parked or released) in one write.</summary>
    private async Task SaveAsync(List<OutboxMessage> handled, CancellationToken ct)
    {
        if (handled.Count == 0)
        {
            return;
        }

        var batch = new WriteBatch();
        handled.ForEach(m => batch.Replace(_messages, m));
        try
        {
            await outbox.Store.CommitAsync(batch, ct).ConfigureAwait(false);
        }
        catch (ConcurrencyConflictException)
        {
            // Another dispatcher took one over after our claim lapsed: it is theirs now; save the others alone.
            foreach (var message in handled)
            {
                await ReplaceQuietlyAsync(message, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task PublishAsync(OutboxMessage message, CancellationToken ct)
    {
        var type = Resolve(message.MessageType)
            ?? throw new UnreadableMessageException($"Outbox message {message.Id} has unknown type '{message.MessageType}'");
        object body;
        try
        {
            body = JsonSerializer.Deserialize(message.Body, type, EventOutbox.Json)
                ?? throw new UnreadableMessageException($"Outbox message {message.Id} has an empty body");
        }
        catch (JsonException e)
        {
            throw new UnreadableMessageException($"Outbox message {message.Id} does not read as {type.Name}: {e.Message}");
        }

        var messageId = Guid.ParseExact(message.Id, "N");
        var copies = Options.DuplicateDeliveryForTests ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            // Not the host's stopping token alone: a broker that does not answer must not hold the dispatcher forever.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(Options.PublishTimeout);
            await bus.Publish(body, type, context => context.MessageId = messageId, timeout.Token).ConfigureAwait(false);
        }
    }

    /// <summary>A conflict means another dispatcher took the event over after our claim lapsed: it is theirs now.</summary>
    private async Task ReplaceQuietlyAsync(OutboxMessage message, CancellationToken ct)
    {
        try
        {
            await _messages.ReplaceAsync(message, ct).ConfigureAwait(false);
        }
        catch (ConcurrencyConflictException)
        {
            logger.LogDebug("Outbox message {MessageId} was taken over by another dispatcher", message.Id);
        }
    }

    private Type? Resolve(string name)
    {
        lock (_types)
        {
            if (!_types.TryGetValue(name, out var type))
            {
                type = Type.GetType(name, throwOnError: false);
                _types[name] = type;
            }

            return type;
        }
    }

    private TimeSpan RetryDelay(int failures)
    {
        var delay = Options.RetryMinDelay * Math.Pow(2, Math.Min(failures - 1, 20));
        return delay < Options.RetryMaxDelay ? delay : Options.RetryMaxDelay;
    }
}

internal sealed class UnreadableMessageException(string message) : Exception(message);
