using System.Collections.Concurrent;
using LLMTune.Contracts;
using LLMTune.Platform.Bus;
using LLMTune.Platform.Modules;
using LLMTune.Testing;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.IntegrationTests;

/// <summary>A contract event published by one host and consumed by another: over RabbitMQ, and in memory.</summary>
[Collection(BrokerCollection.Name)]
public sealed class BusTests(RabbitMqBroker broker)
{
    [Fact]
    public async Task Event_published_by_one_host_is_consumed_by_another_over_RabbitMQ()
    {
        var url = broker.RequireUrl();
        var rabbit = new Dictionary<string, string?> { ["Bus:Transport"] = "RabbitMq", ["ConnectionStrings:RabbitMq"] = url };
        await using var consumer = await ModuleHost.StartAsync([new ListenerModule()], rabbit);
        await using var publisher = await ModuleHost.StartAsync([new PublisherModule()], rabbit);

        await AssertDelivered(publisher, consumer);
        Assert.Equal("Healthy", await Ready(consumer));
    }

    [Fact]
    public async Task Every_instance_consumers_each_get_the_event_while_ordinary_consumers_share_it_over_RabbitMQ()
    {
        var url = broker.RequireUrl();
        var rabbit = new Dictionary<string, string?> { ["Bus:Transport"] = "RabbitMq", ["ConnectionStrings:RabbitMq"] = url };
        // Two replicas of one service: the same consumers, each host with its own BusInstance.
        await using var first = await ModuleHost.StartAsync([new FanOutModule()], rabbit);
        await using var second = await ModuleHost.StartAsync([new FanOutModule()], rabbit);
        await Eventually.True(async () => await Ready(first) == "Healthy" && await Ready(second) == "Healthy", TimeSpan.FromSeconds(90), "both buses");

        var changed = new ApiKeyChanged("ws_fanout", $"req_{Guid.NewGuid():N}", DateTimeOffset.UtcNow, "key_1");
        await first.Services.GetRequiredService<IBus>().Publish(changed, TestContext.Current.CancellationToken);

        var a = first.Services.GetRequiredService<FanOutReceived>();
        var b = second.Services.GetRequiredService<FanOutReceived>();
        await Eventually.True(() => a.EveryInstance.Contains(changed.CorrelationId) && b.EveryInstance.Contains(changed.CorrelationId), TimeSpan.FromSeconds(30), "both replicas");
        await Eventually.True(() => a.Shared.Count + b.Shared.Count >= 1, TimeSpan.FromSeconds(30), "the shared consumer");
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.Equal(1, a.Shared.Count(id => id == changed.CorrelationId) + b.Shared.Count(id => id == changed.CorrelationId));
    }

    [Fact]
    public async Task Event_is_consumed_over_the_in_memory_transport()
    {
        await using var host = await ModuleHost.StartAsync([new PublisherModule(), new ListenerModule()], new Dictionary<string, string?>());
        await AssertDelivered(host, host);
    }

    private static async Task AssertDelivered(ModuleHost publisher, ModuleHost consumer)
    {
        // The bus starts in the background; publishing before the consumer's queue is bound would drop the event.
        await Eventually.True(async () => await Ready(consumer) == "Healthy", TimeSpan.FromSeconds(90), "the consumer's bus to be ready");
        var completed = new TrainingCompleted(
            "ws_bus", $"req_{Guid.NewGuid():N}", DateTimeOffset.UtcNow, "job_1", "llmtune/tiny", "file:///artifacts/job_1.gguf", "lora");
        await publisher.Services.GetRequiredService<IBus>().Publish(completed, TestContext.Current.CancellationToken);

        var received = consumer.Services.GetRequiredService<Received>();
        var got = await Eventually.Get(
            () => Task.FromResult(received.Events.FirstOrDefault(e => e.CorrelationId == completed.CorrelationId)),
            e => e is not null, TimeSpan.FromSeconds(60), "the TrainingCompleted event");
        Assert.Equal(completed, got);
    }

    private static async Task<string?> Ready(ModuleHost host)
    {
        using var client = new HttpClient { BaseAddress = host.Address };
        using var response = await client.GetAsync("/readyz"); // 503 while unhealthy, with the same body
        var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("status").GetString();
    }

    public sealed class Received
    {
        public ConcurrentQueue<TrainingCompleted> Events { get; } = new();
    }

    public sealed class TrainingCompletedRecorder(Received received) : IConsumer<TrainingCompleted>
    {
        public Task Consume(ConsumeContext<TrainingCompleted> context)
        {
            received.Events.Enqueue(context.Message);
            return Task.CompletedTask;
        }
    }

    private sealed class ListenerModule : IServiceModule
    {
        public string Name => "listener";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology) => builder.Services.AddSingleton<Received>();

        public void AddConsumers(IBusRegistrationConfigurator bus) => bus.AddConsumer<TrainingCompletedRecorder>();

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
        }
    }

    public sealed class FanOutReceived
    {
        public ConcurrentBag<string> EveryInstance { get; } = [];
        public ConcurrentBag<string> Shared { get; } = [];
    }

    public sealed class EveryInstanceRecorder(FanOutReceived received) : IConsumer<ApiKeyChanged>
    {
        public Task Consume(ConsumeContext<ApiKeyChanged> context)
        {
            received.EveryInstance.Add(context.Message.CorrelationId);
            return Task.CompletedTask;
        }
    }

    public sealed class SharedRecorder(FanOutReceived received) : IConsumer<ApiKeyChanged>
    {
        public Task Consume(ConsumeContext<ApiKeyChanged> context)
        {
            received.Shared.Add(context.Message.CorrelationId);
            return Task.CompletedTask;
        }
    }

    public sealed class EveryInstanceRecorderDefinition(BusInstance instance) : EveryInstanceConsumerDefinition<EveryInstanceRecorder>(instance);

    private sealed class FanOutModule : IServiceModule
    {
        public string Name => "fan-out";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology) => builder.Services.AddSingleton<FanOutReceived>();

        public void AddConsumers(IBusRegistrationConfigurator bus)
        {
            bus.AddConsumer<EveryInstanceRecorder, EveryInstanceRecorderDefinition>();
            bus.AddConsumer<SharedRecorder>();
        }

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
        }
    }

    private sealed class PublisherModule : IServiceModule
    {
        public string Name => "publisher";

        public void AddServices(WebApplicationBuilder builder, HostTopology topology)
        {
        }

        public void MapEndpoints(WebApplication app, HostTopology topology)
        {
        }
    }
}
