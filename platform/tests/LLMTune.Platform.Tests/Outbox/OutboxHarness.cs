using System.Collections.Concurrent;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LLMTune.Platform.Tests.Outbox;

public sealed record ThingHappened(string ThingId, int Number);

/// <summary>
/// A host with the real outbox, dispatcher and inbox on the in-memory MassTransit bus over a given store, and a
/// consumer that records each effect. <c>BrokerDown</c> makes every publish hang until it times out, as
/// MassTransit does while RabbitMQ is unreachable.
/// </summary>
public sealed class OutboxHarness : IAsyncDisposable
{
    private readonly IHost _host;

    private OutboxHarness(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;

    public EventOutbox Outbox => Services.GetRequiredService<EventOutbox>();

    public Effects Effects => Services.GetRequiredService<Effects>();

    public IBus Bus => Services.GetRequiredService<IBus>();

    public BrokerSwitch Broker => Services.GetRequiredService<BrokerSwitch>();

    public IDocumentCollection<OutboxMessage> Messages => Services.GetRequiredService<IDocumentStore>().Collection<OutboxMessage>(OutboxMessage.Collection);

    public static async Task<OutboxHarness> StartAsync(IDocumentStore store, IDictionary<string, string?>? settings = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Outbox:PollInterval"] = "00:00:00.050",
            ["Outbox:PublishTimeout"] = "00:00:00.300",
            ["Outbox:RetryMinDelay"] = "00:00:00.020",
            ["Outbox:RetryMaxDelay"] = "00:00:00.200",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton<Effects>();
        builder.Services.AddSingleton<BrokerSwitch>();
        builder.Services.AddOutbox();
        builder.Services.AddMassTransit(bus =>
        {
            bus.DisableUsageTelemetry();
            bus.AddConsumer<ThingConsumer>();
            bus.AddConsumer<KeyedThingConsumer, KeyedThingConsumerDefinition>();
            bus.UsingInMemory((context, cfg) =>
            {
                cfg.UsePublishFilter(typeof(BrokerOutageFilter<>), context);
                cfg.UseConsumeFilter(typeof(InboxFilter<>), context);
                cfg.ConfigureEndpoints(context);
            });
        });
        var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        return new OutboxHarness(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}

/// <summary>What the consumer did, per thing: a second effect for one event would be a double charge.</summary>
public sealed class Effects
{
    public ConcurrentDictionary<string, int> ByThing { get; } = new();

    public ConcurrentQueue<Guid> Deliveries { get; } = new();

    /// <summary>Message ids <see cref="KeyedThingConsumer"/> saw (it dedupes by thing id itself).</summary>
    public ConcurrentQueue<Guid> KeyedDeliveries { get; } = new();

    /// <summary>Fails the next delivery of this thing once, as a consumer whose store blinked would.</summary>
    public ConcurrentDictionary<string, bool> FailOnce { get; } = new();
}

public sealed class ThingConsumer(Effects effects) : IConsumer<ThingHappened>
{
    public async Task Consume(ConsumeContext<ThingHappened> context)
    {
        effects.Deliveries.Enqueue(context.MessageId!.Value);
        if (effects.FailOnce.TryRemove(context.Message.ThingId, out _))
        {
            throw new InvalidOperationException("transient failure");
        }

        await Task.Yield();
        effects.ByThing.AddOrUpdate(context.Message.ThingId, 1, (_, n) => n + 1);
    }
}

/// <summary>A consumer keyed by the thing id (as billing's charge is by usage id): exempt from the inbox.</summary>
public sealed class KeyedThingConsumer(Effects effects) : IConsumer<ThingHappened>, INaturallyIdempotentConsumer
{
    public Task Consume(ConsumeContext<ThingHappened> context)
    {
        effects.KeyedDeliveries.Enqueue(context.MessageId!.Value);
        return Task.CompletedTask;
    }
}

public sealed class KeyedThingConsumerDefinition : ConsumerDefinition<KeyedThingConsumer>
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<KeyedThingConsumer> consumer, IRegistrationContext context) =>
        InboxExemptions.ExemptIfNaturallyIdempotent<KeyedThingConsumer>(endpoint, context);
}

public sealed class BrokerSwitch
{
    public volatile bool Down;

    public int Published;
}

/// <summary>While the switch is down, a publish waits until its caller gives up, like a publish to an unreachable RabbitMQ.</summary>
public sealed class BrokerOutageFilter<T>(BrokerSwitch broker) : IFilter<PublishContext<T>> where T : class
{
    public async Task Send(PublishContext<T> context, IPipe<PublishContext<T>> next)
    {
        if (broker.Down)
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }

        await next.Send(context);
        Interlocked.Increment(ref broker.Published);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("broker-outage");
}
