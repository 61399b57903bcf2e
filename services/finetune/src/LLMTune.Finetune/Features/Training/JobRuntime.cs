using System.Collections.Concurrent;

namespace LLMTune.Finetune.Features.Training;

/// <summary>Why a running job was stopped before it finished.</summary>
public enum StopReason
{
    None,
    CancelledByUser,
    LeaseLost,
    Shutdown,
}

/// <summary>A job running in this process: its cancellation and why it was cancelled.</summary>
public sealed class RunningJob(string jobId, CancellationTokenSource cancellation)
{
    private int _reason;

    public string JobId { get; } = jobId;

    public StopReason Reason => (StopReason)Volatile.Read(ref _reason);

    /// <summary>Stops the run; the first reason given wins.</summary>
    public void Stop(StopReason reason)
    {
        Interlocked.CompareExchange(ref _reason, (int)reason, (int)StopReason.None);
        try
        {
            cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the run already ended
        }
    }
}

/// <summary>
/// In-process coordination only (the job document remains the truth): wakes the worker when work appears and lets a
/// cancel request stop a run in this process at once instead of at its next lease renewal.
/// </summary>
public sealed class JobRuntime
{
    private readonly ConcurrentDictionary<string, RunningJob> _running = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);

    public RunningJob Register(string jobId, CancellationTokenSource cancellation) =>
        _running[jobId] = new RunningJob(jobId, cancellation);

    public void Unregister(RunningJob job) => _running.TryRemove(new KeyValuePair<string, RunningJob>(job.JobId, job));

    public bool IsRunning(string jobId) => _running.ContainsKey(jobId);

    public int RunningCount => _running.Count;

    public void Stop(string jobId, StopReason reason)
    {
        if (_running.TryGetValue(jobId, out var job))
        {
            job.Stop(reason);
        }
    }

    /// <summary>Something changed (a job was queued or a slot freed): look for work now.</summary>
    public void Wake() => _wake.Release();

    public async Task WaitForWorkAsync(TimeSpan poll, CancellationToken ct)
    {
        await _wake.WaitAsync(poll, ct).ConfigureAwait(false);
        while (_wake.CurrentCount > 0 && _wake.Wait(0))
        {
            // one look at the queue serves every wake-up that arrived meanwhile
        }
    }
}
