using System.Collections.Concurrent;
using System.Diagnostics;
using LLMTune.Contracts;
using LLMTune.Platform.Outbox;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// One request's call and its metering: disposing it stops the generation (freeing the slot) and publishes
/// <see cref="InferenceCompleted"/> exactly once, whether the call finished, failed mid-way or the client left.
/// </summary>
public sealed class InferenceSession : IAsyncDisposable
{
    private readonly InferenceCaller _caller;
    private readonly UsageMeter _meter;
    private readonly long _startedAt;
    private readonly bool _streamed;
    private readonly HttpResponse? _response;
    private int _disposed;

    internal InferenceSession(InferenceCaller caller, UsageMeter meter, ModelCall call, long startedAt, bool streamed, HttpResponse? response)
    {
        _caller = caller;
        _meter = meter;
        Call = call;
        _startedAt = startedAt;
        _streamed = streamed;
        _response = response;
    }

    public ModelCall Call { get; }

    /// <summary>Milliseconds since the request arrived.</summary>
    public long ElapsedMs => (long)Stopwatch.GetElapsedTime(_startedAt).TotalMilliseconds;

    /// <summary>
    /// Ends the call and records its usage now, before the answer is written (a whole, non-streamed answer): a client
    /// that got its answer was metered, even if the process dies right after. Throws when the store cannot record it
    /// (the client then gets 503 <c>store_unavailable</c> instead of an unbilled answer).
    /// </summary>
    public async Task RecordBeforeAnswerAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Call.DisposeAsync().ConfigureAwait(false);
        await _meter.RecordAsync(_caller, Call.Snapshot(), ElapsedMs, _streamed).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Call.DisposeAsync().ConfigureAwait(false);
        var outcome = Call.Snapshot();
        var latencyMs = ElapsedMs;
        if (_response is null)
        {
            await _meter.PublishAsync(_caller, outcome, latencyMs, _streamed).ConfigureAwait(false);
            return;
        }

        // Metering is off the response path: it runs once the response is complete (or the client has gone).
        _response.OnCompleted(() => _meter.PublishAfterResponse(_caller, outcome, latencyMs, _streamed));
    }
}

/// <summary>
/// Records usage for billing in the outbox: before a whole answer is written, after a stream has ended (or the client
/// has gone). The broker is never on the request's path, and an outage only delays the event.
/// </summary>
public sealed class UsageMeter(EventOutbox outbox, TimeProvider time, ILogger<UsageMeter> logger) : IHostedService
{
    private readonly ConcurrentDictionary<Task, bool> _afterResponses = new();

    /// <summary>Starts metering a call; with a <paramref name="response"/>, usage is recorded after it completes.</summary>
    public InferenceSession Begin(InferenceCaller caller, ModelCall call, long startedAt, bool streamed, HttpResponse? response = null) =>
        new(caller, this, call, startedAt, streamed, response);

    public Task PublishAsync(InferenceCaller caller, InferenceOutcome outcome, long latencyMs, bool streamed) =>
        LogFailureAsync(RecordAsync(caller, outcome, latencyMs, streamed), caller, outcome);

    private async Task LogFailureAsync(Task recording, InferenceCaller caller, InferenceOutcome outcome)
    {
        try
        {
            await recording.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Could not record InferenceCompleted for request {RequestId} ({Model}, {Tokens} tokens)",
                caller.RequestId, outcome.Model, outcome.PromptTokens + outcome.CompletionTokens);
        }
    }

    /// <summary>
    /// For a response's <c>OnCompleted</c>: records the usage without holding the connection, as Kestrel waits for
    /// those callbacks before it reads the connection's next request, and in one write with other answers' usage of
    /// the same <c>Outbox:GroupWindow</c> (at light traffic, one store transaction per request would cost more CPU than
    /// the request itself). The answer is out already either way, so a crash loses at most that window's usage; a
    /// stopping host waits for what is still being written (<see cref="StopAsync"/>).
    /// </summary>
    public Task PublishAfterResponse(InferenceCaller caller, InferenceOutcome outcome, long latencyMs, bool streamed)
    {
        // On the thread pool: with no window the store write would otherwise run on the connection's thread (a
        // group's first write commits on its caller's).
        var publishing = Task.Run(() => LogFailureAsync(outbox.PublishInBackgroundAsync(Usage(caller, outcome, latencyMs, streamed)), caller, outcome));
        if (!publishing.IsCompleted)
        {
            _afterResponses.TryAdd(publishing, true);
            _ = publishing.ContinueWith(done => _afterResponses.TryRemove(done, out _), TaskScheduler.Default);
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.WhenAll(_afterResponses.Keys).WaitAsync(cancellationToken);

    /// <summary>Records the usage in the outbox; throws when the store cannot take it.</summary>
    public Task RecordAsync(InferenceCaller caller, InferenceOutcome outcome, long latencyMs, bool streamed) =>
        // Not the request's token: a client that left must still be metered.
        outbox.PublishAsync(Usage(caller, outcome, latencyMs, streamed), CancellationToken.None);

    private InferenceCompleted Usage(InferenceCaller caller, InferenceOutcome outcome, long latencyMs, bool streamed) =>
        new(
            WorkspaceId: caller.WorkspaceId,
            CorrelationId: caller.RequestId,
            Timestamp: time.GetUtcNow(),
            KeyId: caller.KeyId,
            Model: outcome.Model,
            PromptTokens: outcome.PromptTokens,
            CompletionTokens: outcome.CompletionTokens,
            LatencyMs: latencyMs,
            FinishReason: outcome.FinishReason,
            Streamed: streamed,
            UsageId: caller.UsageId,
            BatchId: caller.BatchId);
}
