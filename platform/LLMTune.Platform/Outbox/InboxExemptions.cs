using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Platform.Outbox;

/// <summary>
/// A consumer whose own write is keyed by the message's identity (a charge by its usage id): a second copy has no second
/// effect by itself, so the inbox lets its messages through without a read and a write of their own.
/// </summary>
public interface INaturallyIdempotentConsumer;

/// <summary>
/// The queues the <see cref="InboxFilter{T}"/> lets through: each hosts one consumer that is
/// <see cref="INaturallyIdempotentConsumer"/> (every consumer has its own queue here, named by its definition).
/// </summary>
public sealed class InboxExemptions
{
    private readonly ConcurrentDictionary<string, bool> _queues = new(StringComparer.Ordinal);

    public bool Contains(string queue) => _queues.ContainsKey(queue);

    /// <summary>For a consumer definition's <c>ConfigureConsumer</c>: exempts the endpoint's queue when <typeparamref name="T"/> is naturally idempotent.</summary>
    public static void ExemptIfNaturallyIdempotent<T>(IReceiveEndpointConfigurator endpoint, IServiceProvider services) where T : class, IConsumer
    {
        if (typeof(INaturallyIdempotentConsumer).IsAssignableFrom(typeof(T)) && services.GetService<InboxExemptions>() is { } exemptions)
        {
            exemptions._queues.TryAdd(QueueName(endpoint.InputAddress), true);
        }
    }

    /// <summary>The queue's name: the last segment of its address (loopback://…/name, rabbitmq://…/vhost/name).</summary>
    internal static string QueueName(Uri address) => address.Segments is { Length: > 0 } segments ? segments[^1].Trim('/') : "bus";
}
