using System.Diagnostics;
using LLMTune.Contracts;
using LLMTune.Platform.Identity;
using MassTransit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// One request's call and its metering: disposing it stops the generation (freeing the slot) and publishes
/// <see cref="InferenceCompleted"/> exactly once, whether the call finished, failed mid-way or the client left.
/// </summary>
public sealed class InferenceSession : IAsyncDisposable
{
    private readonly HttpContext _http;
    private readonly UsageMeter _meter;
    private readonly long _startedAt;
    private readonly bool _streamed;
    private int _disposed;

    internal InferenceSession(HttpContext http, UsageMeter meter, ModelCall call, long startedAt, bool streamed)
    {
        _http = http;
        _meter = meter;
        Call = call;
        _startedAt = startedAt;
        _streamed = streamed;
    }

    public ModelCall Call { get; }

    /// <summary>Milliseconds since the request arrived.</summary>
    public long ElapsedMs => (long)Stopwatch.GetElapsedTime(_startedAt).TotalMilliseconds;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Call.DisposeAsync().ConfigureAwait(false);
        var outcome = Call.Snapshot();
        var latencyMs = ElapsedMs;
        // Metering is off the response path: it runs once the response is complete (or the client has gone).
        _http.Response.OnCompleted(() => _meter.PublishAsync(_http, outcome, latencyMs, _streamed));
    }
}

/// <summary>Publishes usage for billing; a broker hiccup is logged, never turned into a failed inference.</summary>
public sealed class UsageMeter(IBus bus, TimeProvider time, ILogger<UsageMeter> logger)
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(10);

    public InferenceSession Begin(HttpContext http, ModelCall call, long startedAt, bool streamed) => new(http, this, call, startedAt, streamed);

    public async Task PublishAsync(HttpContext http, InferenceOutcome outcome, long latencyMs, bool streamed)
    {
        var usage = new InferenceCompleted(
            WorkspaceId: http.User.WorkspaceIdOf(),
            CorrelationId: http.TraceIdentifier,
            Timestamp: time.GetUtcNow(),
            KeyId: http.User.KeyIdOf(),
            Model: outcome.Model,
            PromptTokens: outcome.PromptTokens,
            CompletionTokens: outcome.CompletionTokens,
            LatencyMs: latencyMs,
            FinishReason: outcome.FinishReason,
            Streamed: streamed);
        try
        {
            // Not the request's token: a client that left must still be metered.
            using var timeout = new CancellationTokenSource(PublishTimeout);
            await bus.Publish(usage, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Could not publish InferenceCompleted for request {RequestId} ({Model}, {Tokens} tokens)",
                usage.CorrelationId, usage.Model, usage.PromptTokens + usage.CompletionTokens);
        }
    }
}
