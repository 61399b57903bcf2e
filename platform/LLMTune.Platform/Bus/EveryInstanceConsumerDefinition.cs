using MassTransit;

namespace LLMTune.Platform.Bus;

/// <summary>
/// Gives a consumer a queue of its own on every running host, so each replica sees each event: for in-process state
/// such as caches and loaded models. Ordinary consumers share one queue per service and compete for its messages.
/// On RabbitMQ the queue is a quorum queue like the others that expires once its host has been gone for
/// <see cref="BusInstance.QueueExpiration"/> (transient queues are deprecated in RabbitMQ 4).
/// </summary>
public abstract class EveryInstanceConsumerDefinition<TConsumer> : ConsumerDefinition<TConsumer>
    where TConsumer : class, IConsumer
{
    protected EveryInstanceConsumerDefinition(BusInstance instance) => Endpoint(e => e.InstanceId = instance.Id);
}

/// <summary>This host's identity on the bus (a singleton per host, so two hosts in one test process differ too).</summary>
public sealed class BusInstance
{
    /// <summary>Suffix of this host's own queues: lowercase and queue-name safe, unique per start.</summary>
    public string Id { get; } = Guid.NewGuid().ToString("N")[..12];

    /// <summary>How long a host's own queue outlives the host.</summary>
    public static readonly TimeSpan QueueExpiration = TimeSpan.FromMinutes(10);

    public bool Owns(string queueName) => queueName.EndsWith(Id, StringComparison.Ordinal);
}
