using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Batch.Features.Batches;

/// <summary>
/// Requests due items from the inference service: new items at once (a new batch wakes it), and items whose result
/// never came once their due time passes (the inference service lost them, or this process restarted). Safe with any
/// number of replicas: each item is claimed by one conditional write. Also sweeps unfinished batches after a crash.
/// </summary>
public sealed class BatchDispatcher(
    BatchStore store,
    BatchProgress progress,
    IOptions<BatchOptions> options,
    ILogger<BatchDispatcher> logger) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0);
    private DateTime _lastSweep = DateTime.MinValue;

    /// <summary>Something became due (a batch was queued): look now instead of at the next poll.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await store.EnsureIndexesAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (DateTime.UtcNow - _lastSweep >= options.Value.SweepInterval)
                {
                    await SweepAsync(stoppingToken);
                    _lastSweep = DateTime.UtcNow;
                }

                await DispatchDueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Batch dispatch failed; retrying at the next poll");
            }

            try
            {
                // Pacing only (real time); whether an item is due is decided by the store's clock.
                await _wake.WaitAsync(options.Value.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async Task DispatchDueAsync(CancellationToken ct)
    {
        var settings = options.Value;
        var due = await store.DueAsync(settings.MaxAttempts, 500, ct);
        foreach (var batch in due.GroupBy(i => i.BatchId))
        {
            var room = settings.MaxInFlightPerBatch - (int)await store.InFlightAsync(batch.Key, ct);
            var requested = 0;
            foreach (var candidate in batch.OrderBy(i => i.Index))
            {
                if (requested >= room)
                {
                    break;
                }

                if (await store.ClaimAsync(candidate.Id, settings.ResultTimeout, settings.MaxAttempts, ct) is null)
                {
                    continue; // another replica took it, or it was cancelled
                }

                // The claim recorded the request in the outbox; a request lost later is made again when the item falls due.
                requested++;
            }

            if (requested > 0)
            {
                await store.MarkProcessingAsync(batch.Key, ct);
            }
        }

        foreach (var exhausted in await store.ExhaustedAsync(options.Value.MaxAttempts, ct))
        {
            await progress.TimeOutAsync(exhausted, ct);
        }
    }

    /// <summary>Unfinished batches get their counts and status brought up to their items; unrecorded announcements are recorded.</summary>
    public async Task SweepAsync(CancellationToken ct)
    {
        foreach (var batch in await store.UnfinishedAsync(ct))
        {
            await progress.RefreshAsync(batch.Id, ct);
        }

        foreach (var batch in await store.UnannouncedAsync(ct))
        {
            await progress.AnnounceAsync(batch, ct);
        }
    }
}
