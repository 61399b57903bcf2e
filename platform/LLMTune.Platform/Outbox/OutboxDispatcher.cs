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
    public async Task<int> DispatchDueAsync(CancellationToken ct)
    {
        var sent = 0;
        var byDue = FindOptions<OutboxMessage>.OrderBy(m => m.DueAt);
        while (sent < Options.BatchSize)
        {
            var now = time.GetUtcNow().UtcDateTime;
            var message = await _messages.FindOneAndUpdateAsync(
                m => m.DueAt <= now,
                m =>
                {
                    m.DueAt = now + ClaimTimeout;
                    m.Attempts++;
                },
                byDue, ct).ConfigureAwait(false);
            if (message is null)
            {
                return sent;
            }

            try
            {
                await PublishAsync(message, ct).ConfigureAwait(false);
            }
            catch (UnreadableMessageException e)
            {
                // Retrying cannot fix it (e.g. a contract removed by an upgrade); parked for an operator, the rest go on.
                logger.LogError("Outbox: {Error}; parked for a day", e.Message);
                message.LastError = e.Message;
                message.DueAt = time.GetUtcNow().UtcDateTime.AddDays(1);
                await ReplaceQuietlyAsync(message, ct).ConfigureAwait(false);
                continue;
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                message.LastError = $"{e.GetType().Name}: {e.Message}";
                message.DueAt = time.GetUtcNow().UtcDateTime; // released: due again once the dispatcher's back-off has passed
                await ReplaceQuietlyAsync(message, CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            message.SentAt = time.GetUtcNow().UtcDateTime;
            message.DueAt = DateTime.MaxValue;
            message.LastError = null;
            await ReplaceQuietlyAsync(message, ct).ConfigureAwait(false);
            sent++;
        }

        return sent;
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
