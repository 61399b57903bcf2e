using LLMTune.Contracts;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage.LiteDb;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Finetune.Tests;

/// <summary>The claim: fair across workspaces, oldest first within one, exclusive, and expired leases are reclaimed.</summary>
public sealed class QueueTests
{
    private static (JobStore Store, FakeTimeProvider Time) NewStore()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var documents = new LiteDbDocumentStore(LiteDbDocumentStore.InMemory);
        return (new JobStore(documents, new EventOutbox(documents, new OutboxSignal(), time), time), time);
    }

    private static async Task<FineTuneJob> Queue(JobStore store, FakeTimeProvider time, string workspace, string id, bool priority = false)
    {
        time.Advance(TimeSpan.FromSeconds(1));
        var job = new FineTuneJob
        {
            Id = id,
            WorkspaceId = workspace,
            BaseModel = "m",
            Dataset = "file_x",
            Epochs = 1,
            BatchSize = 1,
            LearningRate = 0.001,
            Priority = priority,
            CreatedAt = store.Now,
            UpdatedAt = store.Now,
        };
        await store.InsertAsync(job, new TrainingQueued(workspace, id, time.GetUtcNow(), id, "m"), CancellationToken.None);
        return job;
    }

    [Fact]
    public async Task Workspaces_take_turns_and_each_runs_its_oldest_job_first()
    {
        var (store, time) = NewStore();
        await Queue(store, time, "ws_a", "job_a1");
        await Queue(store, time, "ws_a", "job_a2");
        await Queue(store, time, "ws_a", "job_a3");
        await Queue(store, time, "ws_b", "job_b1");
        await Queue(store, time, "ws_c", "job_c1");
        await Queue(store, time, "ws_b", "job_b2");

        var order = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            order.Add((await store.ClaimNextAsync("worker-1", TimeSpan.FromMinutes(1), 100, CancellationToken.None))!.Id);
        }

        Assert.Equal(["job_a1", "job_b1", "job_c1", "job_a2", "job_b2", "job_a3"], order);
        Assert.Null(await store.ClaimNextAsync("worker-1", TimeSpan.FromMinutes(1), 100, CancellationToken.None));
    }

    [Fact]
    public async Task Priority_jobs_are_taken_before_older_standard_ones_and_take_turns_among_themselves()
    {
        var (store, time) = NewStore();
        await Queue(store, time, "ws_sandbox", "job_s1");
        await Queue(store, time, "ws_sandbox", "job_s2");
        await Queue(store, time, "ws_growth", "job_g1", priority: true);
        await Queue(store, time, "ws_other_sandbox", "job_o1");
        await Queue(store, time, "ws_growth", "job_g2", priority: true);
        await Queue(store, time, "ws_scale", "job_c1", priority: true);

        var order = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            order.Add((await store.ClaimNextAsync("worker-1", TimeSpan.FromMinutes(1), 100, CancellationToken.None))!.Id);
        }

        Assert.Equal(["job_g1", "job_c1", "job_g2", "job_s1", "job_o1", "job_s2"], order);
    }

    [Fact]
    public async Task A_claimed_job_is_not_claimed_again_until_its_lease_expires()
    {
        var (store, time) = NewStore();
        await Queue(store, time, "ws_a", "job_1");
        var claimed = await store.ClaimNextAsync("worker-1", TimeSpan.FromSeconds(30), 100, CancellationToken.None);
        Assert.NotNull(claimed);
        await store.UpdateOwnedAsync("job_1", "worker-1", j => j.Status = JobStatus.Training, CancellationToken.None);

        Assert.Null(await store.ClaimNextAsync("worker-2", TimeSpan.FromSeconds(30), 100, CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(31)); // worker-1 died: its lease ran out
        var reclaimed = await store.ClaimNextAsync("worker-2", TimeSpan.FromSeconds(30), 100, CancellationToken.None);
        Assert.Equal("worker-2", reclaimed!.LeaseOwner);
        Assert.Equal(2, reclaimed.Attempts);

        // The old owner can no longer write.
        Assert.Null(await store.UpdateOwnedAsync("job_1", "worker-1", j => j.Progress = 50, CancellationToken.None));
        Assert.NotNull(await store.UpdateOwnedAsync("job_1", "worker-2", j => j.Progress = 50, CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_workers_never_claim_the_same_job()
    {
        var (store, time) = NewStore();
        for (var i = 0; i < 20; i++)
        {
            await Queue(store, time, $"ws_{i % 3}", $"job_{i:D2}");
        }

        var claims = await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var mine = new List<string>();
            while (await store.ClaimNextAsync($"worker-{w}", TimeSpan.FromMinutes(1), 100, CancellationToken.None) is { } job)
            {
                mine.Add(job.Id);
            }

            return mine;
        })));
        var all = claims.SelectMany(c => c).ToList();
        Assert.Equal(20, all.Count);
        Assert.Equal(20, all.Distinct().Count());
    }
}
