using System.Collections.Concurrent;
using System.Linq.Expressions;
using LLMTune.Platform.Storage;

namespace LLMTune.Platform.Tests.Storage;

/// <summary>
/// The one behaviour both stores promise. Each subclass supplies a fresh store; every test works in its
/// own randomly named collection.
/// </summary>
public abstract class DocumentStoreContractTests : IAsyncLifetime
{
    private static readonly DateTime T0 = new(2025, 11, 1, 15, 23, 54, 123, DateTimeKind.Utc);

    private IDocumentStore? _store;

    protected IDocumentStore Store => _store ?? throw new InvalidOperationException("store not open");

    protected IDocumentCollection<TestJob> Jobs { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>How long a TTL-expired document may linger before the store removes it.</summary>
    protected abstract TimeSpan ExpiryDeadline { get; }

    /// <summary>Opens a store, or calls <see cref="Assert.Skip(string)"/> with the reason it cannot.</summary>
    protected abstract ValueTask<IDocumentStore> OpenStoreAsync();

    public virtual async ValueTask InitializeAsync()
    {
        _store = await OpenStoreAsync();
        Jobs = _store.Collection<TestJob>("jobs_" + Guid.NewGuid().ToString("N")[..12]);
    }

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        (_store as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }

    private static TestJob Job(string id, int priority = 0, TestJobStatus status = TestJobStatus.Queued, DateTime? createdAt = null) => new()
    {
        Id = id,
        Name = "job " + id,
        Priority = priority,
        Status = status,
        CreatedAt = createdAt ?? T0,
    };

    private async Task<string[]> IdsAsync(Expression<Func<TestJob, bool>> filter) =>
        [.. (await Jobs.FindAsync(filter, null, Ct)).Select(j => j.Id).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task A_group_commit_gives_each_write_its_own_answer_when_one_write_of_the_group_is_refused()
    {
        await Jobs.InsertAsync(Job("taken"), Ct);
        var stale = (await Jobs.GetAsync("taken", Ct))!;
        var fresh = (await Jobs.GetAsync("taken", Ct))!;
        fresh.Name = "changed";
        await Jobs.ReplaceAsync(fresh, Ct);

        var writes = new GroupCommit<TestJob>(Store, Jobs);
        var answers = await Task.WhenAll([
            .. Enumerable.Range(0, 50).Select(i => writes.InsertAsync(Job($"group_{i:D2}"))),
            writes.InsertAsync(Job("taken")),
            writes.ReplaceAsync(stale),
            .. Enumerable.Range(50, 10).Select(i => writes.InsertAsync(Job($"group_{i:D2}"))),
        ]);

        Assert.Equal([.. Enumerable.Repeat(true, 50), false, false, .. Enumerable.Repeat(true, 10)], answers);
        Assert.Equal(61, await Jobs.CountAsync(j => j.Priority == 0, Ct));
        Assert.Equal("changed", (await Jobs.GetAsync("taken", Ct))!.Name);
    }

    [Fact]
    public async Task Insert_then_get_round_trips_every_field()
    {
        var createdWithSubMilliseconds = T0.AddTicks(4567);
        var job = new TestJob
        {
            Id = "job_1",
            Name = "  spaced  ",
            Owner = "",
            Status = TestJobStatus.Running,
            Priority = -3,
            Counter = long.MaxValue - 1,
            Credits = 12.3456789m,
            CreatedAt = createdWithSubMilliseconds,
            ExpiresAt = null,
            LeaseUntil = createdWithSubMilliseconds.ToLocalTime(),
            Tags = ["a", "b"],
            Stats = new TestJobStats { Tokens = 42 },
        };

        await Jobs.InsertAsync(job, Ct);
        var read = await Jobs.GetAsync("job_1", Ct);

        Assert.NotNull(read);
        Assert.Equal("  spaced  ", read.Name);
        Assert.Equal("", read.Owner);
        Assert.Equal(TestJobStatus.Running, read.Status);
        Assert.Equal(-3, read.Priority);
        Assert.Equal(long.MaxValue - 1, read.Counter);
        Assert.Equal(12.3456789m, read.Credits);
        Assert.Equal(T0, read.CreatedAt); // both stores keep milliseconds
        Assert.Equal(DateTimeKind.Utc, read.CreatedAt.Kind);
        Assert.Null(read.ExpiresAt);
        Assert.Equal(T0, read.LeaseUntil); // local times are stored as the same instant in UTC
        Assert.Equal(DateTimeKind.Utc, read.LeaseUntil!.Value.Kind);
        Assert.Equal(["a", "b"], read.Tags);
        Assert.Equal(42, read.Stats.Tokens);
        Assert.Equal(0, read.Version);
    }

    [Fact]
    public async Task Get_of_unknown_id_is_null()
    {
        Assert.Null(await Jobs.GetAsync("nope", Ct));
    }

    [Fact]
    public async Task Insert_with_taken_id_throws_duplicate()
    {
        await Jobs.InsertAsync(Job("dup"), Ct);

        var ex = await Assert.ThrowsAsync<DuplicateDocumentException>(() => Jobs.InsertAsync(Job("dup", priority: 9), Ct));

        Assert.Equal("dup", ex.DocumentId);
        Assert.Equal(0, (await Jobs.GetAsync("dup", Ct))!.Priority);
    }

    [Fact]
    public async Task Unique_index_rejects_a_second_document_with_the_same_value()
    {
        await Jobs.EnsureIndexAsync(x => x.Name, unique: true, ct: Ct);
        await Jobs.EnsureIndexAsync(x => x.Name, unique: true, ct: Ct); // idempotent
        await Jobs.InsertAsync(new TestJob { Id = "a", Name = "alpha" }, Ct);
        await Jobs.InsertAsync(new TestJob { Id = "b", Name = "beta" }, Ct);

        await Assert.ThrowsAsync<DuplicateDocumentException>(() => Jobs.InsertAsync(new TestJob { Id = "c", Name = "alpha" }, Ct));

        var b = (await Jobs.GetAsync("b", Ct))!;
        b.Name = "alpha";
        await Assert.ThrowsAsync<DuplicateDocumentException>(() => Jobs.ReplaceAsync(b, Ct));
        Assert.Equal(0, b.Version); // a failed replace leaves the caller's copy as it was
        Assert.Equal(2, await Jobs.CountAsync(_ => true, Ct));
    }

    [Fact]
    public async Task Filters_mean_the_same_on_every_store()
    {
        await Jobs.InsertAsync(new TestJob { Id = "j1", Name = "Alpha", Status = TestJobStatus.Queued, Priority = 1, Counter = 10, CreatedAt = T0, Tags = ["gpu"], Owner = "ann" }, Ct);
        await Jobs.InsertAsync(new TestJob { Id = "j2", Name = "alpha", Status = TestJobStatus.Running, Priority = 2, Counter = 20, CreatedAt = T0.AddMinutes(1), ExpiresAt = T0.AddDays(1) }, Ct);
        await Jobs.InsertAsync(new TestJob { Id = "j3", Name = "Gamma", Status = TestJobStatus.Failed, Priority = 3, Counter = 30, CreatedAt = T0.AddMinutes(2), Tags = ["cpu", "gpu"], Owner = "bob" }, Ct);
        var queuedOrFailed = new List<TestJobStatus> { TestJobStatus.Queued, TestJobStatus.Failed };
        var wanted = new[] { "j2", "j3" };
        var cutoff = T0.AddSeconds(30);

        Assert.Equal(["j1"], await IdsAsync(x => x.Name == "Alpha")); // case-sensitive
        Assert.Equal(["j2"], await IdsAsync(x => x.Status == TestJobStatus.Running));
        Assert.Equal(["j1", "j3"], await IdsAsync(x => x.Status != TestJobStatus.Running));
        Assert.Equal(["j2", "j3"], await IdsAsync(x => x.CreatedAt > cutoff));
        Assert.Equal(["j1"], await IdsAsync(x => x.CreatedAt <= cutoff));
        Assert.Equal(["j2"], await IdsAsync(x => x.Priority >= 2 && x.Counter < 30));
        Assert.Equal(["j1", "j3"], await IdsAsync(x => x.Priority == 1 || x.Name == "Gamma"));
        Assert.Equal(["j1", "j3"], await IdsAsync(x => x.ExpiresAt == null));
        Assert.Equal(["j2"], await IdsAsync(x => x.ExpiresAt != null));
        Assert.Equal(["j2"], await IdsAsync(x => x.Owner == null));
        Assert.Equal(["j1", "j3"], await IdsAsync(x => x.Tags.Contains("gpu")));
        Assert.Equal(["j1", "j3"], await IdsAsync(x => queuedOrFailed.Contains(x.Status)));
        Assert.Equal(["j2", "j3"], await IdsAsync(x => wanted.Contains(x.Id)));
        Assert.Equal(["j3"], await IdsAsync(x => x.Stats.Tokens == 0 && x.Counter > 25));
        Assert.Equal(["j2", "j3"], await IdsAsync(x => !(x.Priority < 2)));
        Assert.Equal(2, await Jobs.CountAsync(x => x.Priority > 1, Ct));
        Assert.Equal("j3", (await Jobs.FindOneAsync(x => x.Owner == "bob", Ct))?.Id);
        Assert.Null(await Jobs.FindOneAsync(x => x.Owner == "carol", Ct));
    }

    [Fact]
    public async Task Find_sorts_skips_and_limits()
    {
        for (var i = 0; i < 10; i++)
        {
            // Priorities repeat so the second sort key decides within a priority.
            await Jobs.InsertAsync(Job($"j{i}", priority: i % 3, createdAt: T0.AddMinutes(i)), Ct);
        }

        var newest = await Jobs.FindAsync(x => x.Priority >= 0, FindOptions<TestJob>.OrderByDescending(x => x.CreatedAt).Take(3), Ct);
        Assert.Equal(["j9", "j8", "j7"], newest.Select(j => j.Id));

        var page2 = await Jobs.FindAsync(x => true, FindOptions<TestJob>.OrderBy(x => x.CreatedAt).Skip(3).Take(2), Ct);
        Assert.Equal(["j3", "j4"], page2.Select(j => j.Id));

        var compound = await Jobs.FindAsync(
            x => x.Priority != 1,
            FindOptions<TestJob>.OrderByDescending(x => x.Priority).ThenBy(x => x.CreatedAt).Skip(1).Take(4),
            Ct);
        Assert.Equal(["j5", "j8", "j0", "j3"], compound.Select(j => j.Id)); // priority 2: j2 j5 j8; priority 0: j0 j3 j6 j9

        Assert.Empty(await Jobs.FindAsync(x => x.Priority > 5, FindOptions<TestJob>.First(5), Ct));
        Assert.Equal(10, (await Jobs.FindAsync(x => true, null, Ct)).Count);
    }

    [Fact]
    public async Task Replace_bumps_version_and_rejects_stale_copies()
    {
        await Jobs.InsertAsync(Job("r1"), Ct);
        var first = (await Jobs.GetAsync("r1", Ct))!;
        var stale = (await Jobs.GetAsync("r1", Ct))!;

        first.Status = TestJobStatus.Running;
        await Jobs.ReplaceAsync(first, Ct);
        Assert.Equal(1, first.Version);

        stale.Status = TestJobStatus.Failed;
        var ex = await Assert.ThrowsAsync<ConcurrencyConflictException>(() => Jobs.ReplaceAsync(stale, Ct));
        Assert.Equal(0, ex.ExpectedVersion);
        Assert.Equal(0, stale.Version);

        var stored = (await Jobs.GetAsync("r1", Ct))!;
        Assert.Equal(TestJobStatus.Running, stored.Status);
        Assert.Equal(1, stored.Version);

        stored.Priority = 7;
        await Jobs.ReplaceAsync(stored, Ct);
        Assert.Equal(2, (await Jobs.GetAsync("r1", Ct))!.Version);
    }

    [Fact]
    public async Task Concurrent_replaces_of_one_version_let_exactly_one_writer_win()
    {
        await Jobs.InsertAsync(Job("race"), Ct);
        var copies = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Jobs.GetAsync("race", Ct)));
        var winners = new ConcurrentBag<int>();
        var conflicts = 0;

        await Task.WhenAll(copies.Select((copy, i) => Task.Run(async () =>
        {
            copy!.Priority = i + 1;
            try
            {
                await Jobs.ReplaceAsync(copy, Ct);
                winners.Add(i + 1);
            }
            catch (ConcurrencyConflictException)
            {
                Interlocked.Increment(ref conflicts);
            }
        }, Ct)));

        var winner = Assert.Single(winners);
        Assert.Equal(7, conflicts);
        var stored = (await Jobs.GetAsync("race", Ct))!;
        Assert.Equal(winner, stored.Priority);
        Assert.Equal(1, stored.Version);
    }

    [Fact]
    public async Task Replace_of_a_missing_document_throws_not_found()
    {
        await Assert.ThrowsAsync<DocumentNotFoundException>(() => Jobs.ReplaceAsync(Job("ghost"), Ct));
    }

    [Fact]
    public async Task Parallel_increments_are_all_counted()
    {
        await Jobs.InsertAsync(Job("counter"), Ct);

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => Jobs.IncrementAsync("counter", x => x.Counter, 3, Ct), Ct)));

        var stored = (await Jobs.GetAsync("counter", Ct))!;
        Assert.Equal(150, stored.Counter);
        Assert.Equal(50, stored.Version); // an increment is a write, so stale copies cannot overwrite it
        Assert.Equal(Enumerable.Range(1, 50).Select(i => i * 3L), results.Order());
        Assert.Equal(149, await Jobs.IncrementAsync("counter", x => x.Counter, -1, Ct));
        Assert.Equal(5, await Jobs.IncrementAsync("counter", x => x.Stats.Tokens, 5, Ct));
    }

    [Fact]
    public async Task Increment_of_a_missing_document_throws_not_found()
    {
        await Assert.ThrowsAsync<DocumentNotFoundException>(() => Jobs.IncrementAsync("ghost", x => x.Counter, 1, Ct));
    }

    [Fact]
    public async Task Delete_removes_once()
    {
        await Jobs.InsertAsync(Job("d1"), Ct);
        await Jobs.InsertAsync(Job("d2", priority: 5), Ct);
        await Jobs.InsertAsync(Job("d3", priority: 5), Ct);

        Assert.True(await Jobs.DeleteAsync("d1", Ct));
        Assert.False(await Jobs.DeleteAsync("d1", Ct));
        Assert.Null(await Jobs.GetAsync("d1", Ct));
        Assert.Equal(2, await Jobs.DeleteManyAsync(x => x.Priority == 5, Ct));
        Assert.Equal(0, await Jobs.CountAsync(_ => true, Ct));
    }

    [Fact]
    public async Task Ttl_index_deletes_expired_documents_only()
    {
        var now = DateTime.UtcNow;
        await Jobs.EnsureIndexAsync(x => x.ExpiresAt, expireAfter: TimeSpan.Zero, ct: Ct);
        await Jobs.InsertAsync(new TestJob { Id = "expired", ExpiresAt = now.AddHours(-1) }, Ct);
        await Jobs.InsertAsync(new TestJob { Id = "fresh", ExpiresAt = now.AddHours(1) }, Ct);
        await Jobs.InsertAsync(new TestJob { Id = "forever", ExpiresAt = null }, Ct);

        await Poll.UntilAsync(async () => await Jobs.GetAsync("expired", Ct) is null, ExpiryDeadline, "the expired document to be deleted");

        Assert.Equal(["forever", "fresh"], await IdsAsync(_ => true));
    }

    [Fact]
    public async Task Ttl_index_requires_a_date_field()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Jobs.EnsureIndexAsync(x => x.Name, expireAfter: TimeSpan.FromMinutes(1), ct: Ct));
    }

    [Fact]
    public async Task Claims_hand_each_document_to_exactly_one_worker()
    {
        const int jobCount = 20;
        for (var i = 0; i < jobCount; i++)
        {
            await Jobs.InsertAsync(Job($"c{i:D2}", createdAt: T0.AddSeconds(i)), Ct);
        }

        var claimed = new ConcurrentBag<(string Worker, string Job)>();
        await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var worker = $"w{w}";
            while (await Jobs.FindOneAndUpdateAsync(
                       x => x.Status == TestJobStatus.Queued,
                       job =>
                       {
                           job.Status = TestJobStatus.Running;
                           job.ClaimedBy = worker;
                           job.LeaseUntil = DateTime.UtcNow.AddMinutes(5);
                       },
                       FindOptions<TestJob>.OrderBy(x => x.CreatedAt),
                       Ct) is { } job)
            {
                Assert.Equal(worker, job.ClaimedBy);
                claimed.Add((worker, job.Id));
            }
        }, Ct)));

        Assert.Equal(jobCount, claimed.Count);
        Assert.Equal(jobCount, claimed.Select(c => c.Job).Distinct().Count());
        foreach (var (worker, id) in claimed)
        {
            var stored = (await Jobs.GetAsync(id, Ct))!;
            Assert.Equal(worker, stored.ClaimedBy);
            Assert.Equal(TestJobStatus.Running, stored.Status);
            Assert.Equal(1, stored.Version);
        }
    }

    [Fact]
    public async Task Claim_takes_the_first_in_sort_order_and_returns_null_when_none_match()
    {
        await Jobs.InsertAsync(Job("late", createdAt: T0.AddMinutes(5)), Ct);
        await Jobs.InsertAsync(Job("early", createdAt: T0), Ct);
        await Jobs.InsertAsync(Job("done", status: TestJobStatus.Succeeded, createdAt: T0.AddMinutes(-5)), Ct);

        var first = await Jobs.FindOneAndUpdateAsync(x => x.Status == TestJobStatus.Queued, j => j.Status = TestJobStatus.Running, FindOptions<TestJob>.OrderBy(x => x.CreatedAt), Ct);
        var second = await Jobs.FindOneAndUpdateAsync(x => x.Status == TestJobStatus.Queued, j => j.Status = TestJobStatus.Running, FindOptions<TestJob>.OrderBy(x => x.CreatedAt), Ct);
        var third = await Jobs.FindOneAndUpdateAsync(x => x.Status == TestJobStatus.Queued, j => j.Status = TestJobStatus.Running, null, Ct);

        Assert.Equal("early", first?.Id);
        Assert.Equal("late", second?.Id);
        Assert.Null(third);
        Assert.Equal(TestJobStatus.Running, (await Jobs.GetAsync("early", Ct))!.Status);
    }

    [Fact]
    public async Task Collections_with_the_same_name_share_documents_and_names_are_checked()
    {
        await Jobs.InsertAsync(Job("shared"), Ct);

        Assert.NotNull(await Store.Collection<TestJob>(Jobs.Name).GetAsync("shared", Ct));
        Assert.Throws<ArgumentException>(() => Store.Collection<TestJob>("bad name"));
        Assert.Throws<ArgumentException>(() => Store.Collection<TestJob>("$system"));
        await Assert.ThrowsAsync<ArgumentException>(() => Jobs.InsertAsync(new TestJob { Id = "" }, Ct));
    }

    [Fact]
    public async Task A_batch_writes_every_operation_across_collections()
    {
        var others = Store.Collection<TestJob>(Jobs.Name + "_b");
        await Jobs.InsertAsync(Job("existing"), Ct);
        var existing = (await Jobs.GetAsync("existing", Ct))!;
        existing.Priority = 5;

        await Store.CommitAsync(new WriteBatch().Replace(Jobs, existing).Insert(Jobs, Job("new")).Insert(others, Job("elsewhere")), Ct);

        Assert.Equal(1, existing.Version);
        Assert.Equal(5, (await Jobs.GetAsync("existing", Ct))!.Priority);
        Assert.NotNull(await Jobs.GetAsync("new", Ct));
        Assert.NotNull(await others.GetAsync("elsewhere", Ct));
    }

    [Theory]
    [InlineData("stale")]
    [InlineData("duplicate")]
    [InlineData("missing")]
    public async Task A_batch_with_a_failing_operation_writes_nothing(string failure)
    {
        var others = Store.Collection<TestJob>(Jobs.Name + "_b");
        await Jobs.InsertAsync(Job("existing"), Ct);
        var existing = (await Jobs.GetAsync("existing", Ct))!;
        existing.Priority = 5;
        var batch = new WriteBatch().Replace(Jobs, existing).Insert(others, Job("first"));
        Type expected;
        switch (failure)
        {
            case "stale":
                await Jobs.ReplaceAsync((await Jobs.GetAsync("existing", Ct))!, Ct); // someone else writes it meanwhile
                expected = typeof(ConcurrencyConflictException);
                break;
            case "duplicate":
                batch.Insert(Jobs, Job("existing"));
                expected = typeof(DuplicateDocumentException);
                break;
            default:
                batch.Replace(Jobs, Job("missing"));
                expected = typeof(DocumentNotFoundException);
                break;
        }

        var thrown = await Assert.ThrowsAnyAsync<StorageException>(() => Store.CommitAsync(batch, Ct));

        Assert.IsType(expected, thrown);
        Assert.Null(await others.GetAsync("first", Ct));
        Assert.Equal(failure == "stale" ? 1 : 0, (await Jobs.GetAsync("existing", Ct))!.Version);
        Assert.Equal(0, (await Jobs.GetAsync("existing", Ct))!.Priority);
        Assert.Equal(0, existing.Version); // the caller's copy is as it was, ready for a retry
    }

    [Fact]
    public async Task Ping_succeeds_on_a_reachable_store()
    {
        await Store.PingAsync(Ct);
    }
}
