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
