using LLMTune.Platform.Storage;
using LLMTune.Platform.Storage.LiteDb;

namespace LLMTune.Platform.Tests.Storage;

/// <summary>The contract on the embedded store, each test in its own database file.</summary>
public sealed class LiteDbDocumentStoreTests : DocumentStoreContractTests
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "llmtune-litedb-" + Guid.NewGuid().ToString("N"));

    private string DatabasePath => Path.Combine(_directory, "data", "llmtune.db");

    protected override TimeSpan ExpiryDeadline => TimeSpan.FromSeconds(10);

    // A short sweep interval keeps the TTL test quick; production uses Storage:LiteDbTtlSweepInterval.
    protected override ValueTask<IDocumentStore> OpenStoreAsync() =>
        ValueTask.FromResult<IDocumentStore>(new LiteDbDocumentStore(DatabasePath, TimeSpan.FromMilliseconds(50)));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task Documents_survive_reopening_the_file()
    {
        await Jobs.InsertAsync(new TestJob { Id = "kept", Name = "Kept" }, Ct);
        await Jobs.EnsureIndexAsync(x => x.Name, unique: true, ct: Ct);
        ((IDisposable)Store).Dispose();

        using var reopened = new LiteDbDocumentStore(DatabasePath);
        var jobs = reopened.Collection<TestJob>(Jobs.Name);

        Assert.Equal("Kept", (await jobs.GetAsync("kept", Ct))?.Name);
        await Assert.ThrowsAsync<DuplicateDocumentException>(() => jobs.InsertAsync(new TestJob { Id = "other", Name = "Kept" }, Ct));
        Assert.Equal(1, await jobs.CountAsync(x => x.Name == "Kept", Ct));
        Assert.Equal(0, await jobs.CountAsync(x => x.Name == "kept", Ct)); // collation stays case-sensitive after reopening
    }

    [Fact]
    public async Task The_change_stamp_of_a_collection_moves_after_every_kind_of_write_to_it_and_only_to_it()
    {
        var others = Store.Collection<TestJob>("others");
        long Stamp() => Store.ChangeStamp(Jobs.Name) ?? throw new InvalidOperationException("an exclusive store has stamps");
        var seen = new List<long> { Stamp() };
        async Task Moved(Func<Task> write)
        {
            await write();
            Assert.DoesNotContain(Stamp(), seen);
            seen.Add(Stamp());
        }

        await Moved(() => Jobs.InsertAsync(new TestJob { Id = "a" }, Ct));
        await Moved(async () => await Jobs.ReplaceAsync((await Jobs.GetAsync("a", Ct))!, Ct));
        await Moved(() => Jobs.IncrementAsync("a", x => x.Counter, 1, Ct));
        await Moved(() => Jobs.FindOneAndUpdateAsync(x => x.Id == "a", x => x.Name = "b", null, Ct));
        await Moved(() => Store.CommitAsync(new WriteBatch().Insert(Jobs, new TestJob { Id = "c" }), Ct));
        await Moved(() => Jobs.DeleteAsync("c", Ct));
        await Moved(() => Jobs.DeleteManyAsync(x => x.Id == "a", Ct));

        await others.InsertAsync(new TestJob { Id = "x" }, Ct);
        Assert.Equal(seen[^1], Stamp());
        using var shared = new LiteDbDocumentStore(LiteDbDocumentStore.InMemory) { IsExclusive = false };
        Assert.Null(shared.ChangeStamp(Jobs.Name)); // others may write a shared store: nothing can be kept on a stamp
    }

    [Fact]
    public async Task Ping_fails_once_the_store_is_closed()
    {
        ((IDisposable)Store).Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Store.PingAsync(Ct));
    }

    [Fact]
    public async Task In_memory_store_works_without_a_file()
    {
        using var store = new LiteDbDocumentStore(LiteDbDocumentStore.InMemory);
        var jobs = store.Collection<TestJob>("jobs");

        await jobs.InsertAsync(new TestJob { Id = "m" }, Ct);

        Assert.Equal(1, await jobs.IncrementAsync("m", x => x.Counter, 1, Ct));
        Assert.False(File.Exists(LiteDbDocumentStore.InMemory));
    }
}
