using System.Diagnostics;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using LLMTune.Platform.Storage.LiteDb;
using LLMTune.Platform.Storage.Mongo;
using LLMTune.Platform.Tests.Storage;
using LLMTune.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Platform.Tests.Outbox;

/// <summary>A started <see cref="OutboxHarness"/> over a fresh store per test.</summary>
public abstract class OutboxTestBase : IAsyncLifetime
{
    private OutboxHarness? _harness;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected OutboxHarness Harness => _harness ?? throw new InvalidOperationException("not started");

    protected IDocumentStore Store { get; private set; } = null!;

    protected virtual IDictionary<string, string?> Settings => new Dictionary<string, string?>();

    private string? _directory;

    /// <summary>A LiteDB file in a directory of this test's own, deleted after it.</summary>
    protected string LiteDbFile => Path.Combine(_directory ??= Directory.CreateTempSubdirectory("llmtune-outbox-").FullName, "outbox.db");

    /// <summary>Opens a store, or calls <see cref="Assert.Skip(string)"/> with the reason it cannot.</summary>
    protected abstract ValueTask<IDocumentStore> OpenStoreAsync();

    public virtual async ValueTask InitializeAsync()
    {
        Store = await OpenStoreAsync();
        _harness = await OutboxHarness.StartAsync(Store, Settings);
    }

    public virtual async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        if (_harness is not null)
        {
            await _harness.DisposeAsync();
        }

        (Store as IDisposable)?.Dispose();
        if (_directory is not null)
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

}

/// <summary>The outbox's promises, on every store: recorded with the state, published once the bus takes it, effects once.</summary>
public abstract class OutboxContractTests : OutboxTestBase
{
    /// <summary>
    /// A claim lapses after 3× the publish timeout. With the harness's 300 ms, a round that stalled for a second on a
    /// loaded CI machine (thread-pool injection while many test hosts start) let the second dispatcher publish it again,
    /// which is the designed take-over, not the double publish the two-dispatcher test is about.
    /// </summary>
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Outbox:PublishTimeout"] = "00:00:02" };

    private IDocumentCollection<TestJob> Jobs => Store.Collection<TestJob>("outbox_jobs");

    [Fact]
    public async Task An_event_written_with_its_state_change_is_published_once_and_marked_sent()
    {
        await Harness.Outbox.Write()
            .Insert(Jobs, new TestJob { Id = "job_1", Name = "first" })
            .Add(new ThingHappened("job_1", 1))
            .CommitAsync(Ct);

        await Eventually.True(() => Harness.Effects.ByThing.ContainsKey("job_1"), what: "the event consumed");
        var message = await Eventually.Get(() => Harness.Messages.FindOneAsync(_ => true, Ct), m => m?.SentAt is not null, what: "the event marked sent");
        Assert.Equal(1, Harness.Effects.ByThing["job_1"]);
        Assert.Equal(Guid.ParseExact(message.Id, "N"), Assert.Single(Harness.Effects.Deliveries)); // one id from store to consumer
        Assert.Equal(1, message.Attempts);
        Assert.Equal(DateTime.MaxValue, message.DueAt);
        Assert.NotNull(await Jobs.GetAsync("job_1", Ct));
    }

    [Fact]
    public async Task A_write_that_fails_records_no_event()
    {
        await Jobs.InsertAsync(new TestJob { Id = "job_1" }, Ct);
        var stale = (await Jobs.GetAsync("job_1", Ct))!;
        await Jobs.ReplaceAsync((await Jobs.GetAsync("job_1", Ct))!, Ct);

        await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Harness.Outbox.Write()
            .Replace(Jobs, stale)
            .Add(new ThingHappened("job_1", 2))
            .CommitAsync(Ct));

        Assert.Equal(0, await Harness.Messages.CountAsync(_ => true, Ct));
    }

    [Fact]
    public async Task While_the_broker_is_down_writes_return_at_once_and_every_event_goes_out_when_it_is_back()
    {
        Harness.Broker.Down = true;
        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 20; i++)
        {
            var watch = Stopwatch.StartNew();
            await Harness.Outbox.PublishAsync(new ThingHappened($"usage_{i}", i), Ct);
            slowest = watch.Elapsed > slowest ? watch.Elapsed : slowest;
        }

        // The dispatcher keeps failing meanwhile (each publish times out after Outbox:PublishTimeout, 2 s here).
        await Eventually.True(async () => await Harness.Messages.CountAsync(m => m.LastError != null, Ct) > 0, what: "a failed publish recorded");
        Assert.True(slowest < TimeSpan.FromMilliseconds(250), $"slowest write took {slowest.TotalMilliseconds:F0} ms with the broker down");
        Assert.Empty(Harness.Effects.ByThing);

        Harness.Broker.Down = false;

        await Eventually.True(() => Harness.Effects.ByThing.Count == 20, what: "all 20 events consumed once the broker is back");
        await Eventually.True(async () => await Harness.Messages.CountAsync(m => m.SentAt == null, Ct) == 0, what: "all marked sent");
        Assert.All(Harness.Effects.ByThing.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task A_consumer_that_fails_runs_again_on_the_retry()
    {
        Harness.Effects.FailOnce["job_9"] = true;

        await Harness.Outbox.PublishAsync(new ThingHappened("job_9", 9), Ct);
        // Nothing retries the in-memory delivery here, so the same message is published again by hand, as a redelivery would.
        var sent = await Eventually.Get(() => Harness.Messages.FindOneAsync(_ => true, Ct), m => m?.SentAt is not null, what: "sent");
        await Eventually.True(() => Harness.Effects.Deliveries.Count == 1, what: "the failed delivery");
        sent.DueAt = DateTime.UtcNow;
        sent.SentAt = null;
        await Harness.Messages.ReplaceAsync(sent, Ct);
        Harness.Services.GetRequiredService<OutboxSignal>().Notify();

        await Eventually.True(() => Harness.Effects.ByThing.TryGetValue("job_9", out var n) && n == 1, what: "the effect after the retry");
        Assert.Equal(2, Harness.Effects.Deliveries.Count);
    }

    [Fact]
    public async Task Two_dispatchers_over_one_store_publish_each_event_once()
    {
        await using var second = await OutboxHarness.StartAsync(Store, Settings);
        for (var i = 0; i < 40; i++)
        {
            await (i % 2 == 0 ? Harness : second).Outbox.PublishAsync(new ThingHappened($"thing_{i}", i), Ct);
        }

        await Eventually.True(() => Harness.Effects.ByThing.Count + second.Effects.ByThing.Count >= 40, what: "all 40 consumed");
        await Eventually.True(async () => await Harness.Messages.CountAsync(m => m.SentAt == null, Ct) == 0, what: "all marked sent");
        await Task.Delay(200, Ct); // a second publish of any of them would have been consumed by now
        Assert.Equal(40, Volatile.Read(ref Harness.Broker.Published) + Volatile.Read(ref second.Broker.Published));
        Assert.Equal(40, Harness.Effects.ByThing.Keys.Concat(second.Effects.ByThing.Keys).Distinct().Count());
        Assert.All(await Harness.Messages.FindAsync(_ => true, null, Ct), m => Assert.Equal(1, m.Attempts));
    }
}

/// <summary>Every message delivered twice (Outbox:DuplicateDeliveryForTests): each effect still happens once.</summary>
public abstract class OutboxRedeliveryContractTests : OutboxTestBase
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Outbox:DuplicateDeliveryForTests"] = "true" };

    [Fact]
    public async Task Every_message_delivered_twice_has_its_effect_once()
    {
        for (var i = 0; i < 30; i++)
        {
            await Harness.Outbox.PublishAsync(new ThingHappened($"thing_{i}", i), Ct);
        }

        await Eventually.True(() => Volatile.Read(ref Harness.Broker.Published) >= 60, what: "both copies of all 30 published");
        await Eventually.True(async () => await Harness.Messages.CountAsync(m => m.SentAt == null, Ct) == 0, what: "all marked sent");
        await Eventually.True(() => Harness.Effects.ByThing.Count == 30, what: "30 effects");
        await Harness.Bus.Publish(new ThingHappened("late", 0), Ct); // delivered after every copy: the queue has drained

        await Eventually.True(() => Harness.Effects.ByThing.ContainsKey("late"), what: "the queue drained");
        Assert.Equal(31, Harness.Effects.Deliveries.Count); // the inbox let the consumer see each message id once
        Assert.All(Harness.Effects.ByThing.Values, n => Assert.Equal(1, n));
        // A naturally idempotent consumer is exempt: it saw both copies, and the inbox holds no record of its own.
        await Eventually.True(() => Harness.Effects.KeyedDeliveries.Count == 61, what: "the keyed consumer saw every copy");
        var inbox = await Store.Collection<InboxRecord>(InboxRecord.Collection).FindAsync(_ => true, null, Ct);
        Assert.Equal(31, inbox.Count);
        Assert.DoesNotContain(inbox, r => r.Id.StartsWith("KeyedThing", StringComparison.Ordinal));
    }
}

public sealed class LiteDbOutboxTests : OutboxContractTests
{
    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(LiteDbFile));
}

/// <summary>Retention on the embedded store (MongoDB's TTL monitor is its own, checked by the store contract).</summary>
public sealed class LiteDbOutboxRetentionTests : OutboxTestBase
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Outbox:SentRetention"] = "00:00:00" };

    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(LiteDbFile, TimeSpan.FromMilliseconds(50)));

    [Fact]
    public async Task Sent_events_are_deleted_after_the_retention()
    {
        await Harness.Outbox.PublishAsync(new ThingHappened("job_ttl", 1), Ct);

        await Eventually.True(() => Harness.Effects.ByThing.ContainsKey("job_ttl"), what: "consumed");
        await Eventually.True(async () => await Harness.Messages.CountAsync(_ => true, Ct) == 0, what: "the sent event deleted (retention 0)");
    }
}

/// <summary>The embedded store treated as shared: claims and inbox leases in the store, as on MongoDB.</summary>
public sealed class LiteDbSharedOutboxTests : OutboxContractTests
{
    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(LiteDbFile) { IsExclusive = false });
}

public sealed class LiteDbSharedOutboxRedeliveryTests : OutboxRedeliveryContractTests
{
    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(LiteDbFile) { IsExclusive = false });
}

public sealed class LiteDbOutboxRedeliveryTests : OutboxRedeliveryContractTests
{
    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(LiteDbFile));
}

public sealed class MongoOutboxTests(MongoServerFixture server) : OutboxContractTests, IClassFixture<MongoServerFixture>
{
    private readonly string _databaseName = "llmtune_outbox_" + Guid.NewGuid().ToString("N")[..12];

    protected override ValueTask<IDocumentStore> OpenStoreAsync()
    {
        if (server.Client is null)
        {
            Assert.Skip(server.SkipReason ?? "MongoDB unavailable");
        }

        return ValueTask.FromResult<IDocumentStore>(new MongoDocumentStore(server.Client, _databaseName));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (server.Client is not null)
        {
            await server.Client.DropDatabaseAsync(_databaseName);
        }
    }
}

public sealed class MongoOutboxRedeliveryTests(MongoServerFixture server) : OutboxRedeliveryContractTests, IClassFixture<MongoServerFixture>
{
    private readonly string _databaseName = "llmtune_outbox_" + Guid.NewGuid().ToString("N")[..12];

    protected override ValueTask<IDocumentStore> OpenStoreAsync()
    {
        if (server.Client is null)
        {
            Assert.Skip(server.SkipReason ?? "MongoDB unavailable");
        }

        return ValueTask.FromResult<IDocumentStore>(new MongoDocumentStore(server.Client, _databaseName));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (server.Client is not null)
        {
            await server.Client.DropDatabaseAsync(_databaseName);
        }
    }
}
