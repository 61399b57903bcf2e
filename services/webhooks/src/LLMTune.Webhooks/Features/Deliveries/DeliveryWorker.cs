using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>
/// Claims due deliveries from the store (a lease, so one replica sends each attempt), sends them and stores the outcome
/// with the next due time. Deliveries about one subject (a job, a batch) to one destination go one after another, in
/// the order they were claimed, so a receiver sees training.completed before model.deployed.
/// </summary>
public sealed class DeliveryWorker(
    DeliveryStore deliveries,
    EndpointStore endpoints,
    WorkspaceSecrets workspaceSecrets,
    SecretProtector protector,
    WebhookSender sender,
    DeliveryHandOff handOff,
    TimeProvider time,
    IOptions<WebhooksOptions> options,
    ILogger<DeliveryWorker> logger) : BackgroundService
{
    /// <summary>Deliveries claimed by one store transaction at most.</summary>
    private const int ClaimGroup = 64;

    /// <summary>
    /// A handed-off delivery is sent only while its lease outlasts an attempt by this much (a backlog may have kept it
    /// waiting): otherwise it could expire mid-attempt and another replica send it as well.
    /// </summary>
    private static readonly TimeSpan LeaseMargin = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, Task> _lanes = new(StringComparer.Ordinal);

    /// <summary>Unique per process start, so a restarted process never mistakes an old lease for its own.</summary>
    public string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}";

    private DeliveryOptions Settings => options.Value.Delivery;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = Settings;
        if (!settings.Enabled)
        {
            logger.LogInformation("Webhook delivery is off in this process (Webhooks:Delivery:Enabled)");
            return;
        }

        using var slots = new SemaphoreSlim(settings.Concurrency, settings.Concurrency);
        handOff.Open(WorkerId, settings.LeaseDuration, 4 * settings.Concurrency);
        var lastClaim = 0L;
        var storeWasFull = false;
        var pollNow = true;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await slots.WaitAsync(stoppingToken);
                // Every free slot at once: one claim (one store transaction) for many deliveries under load.
                var free = 1;
                while (free < ClaimGroup && slots.Wait(0))
                {
                    free++;
                }

                var handedOff = await TakeHandOffsAsync(free, settings, stoppingToken);

                // Deliveries from the store (retries, other processes' events, overflow, resends): when something was stored
                // due now, while the last claim found as many as it asked for, and once per poll interval otherwise.
                IReadOnlyList<WebhookDelivery> claimed = [];
                if (handedOff.Count < free
                    && (handOff.Signal.TakeStoreHasWork() | storeWasFull | pollNow || Stopwatch.GetElapsedTime(lastClaim) >= settings.PollInterval))
                {
                    pollNow = false;
                    try
                    {
                        lastClaim = Stopwatch.GetTimestamp();
                        var wanted = free - handedOff.Count;
                        claimed = await deliveries.ClaimManyAsync(WorkerId, settings.LeaseDuration, wanted, stoppingToken);
                        storeWasFull = claimed.Count == wanted;
                        if (!storeWasFull)
                        {
                            handOff.CaughtUp();
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        logger.LogError(e, "Claiming webhook deliveries failed");
                    }
                }

                var taken = handedOff.Count + claimed.Count;
                if (free > taken)
                {
                    slots.Release(free - taken);
                }

                // Hand-offs first: when the store holds overflow, every hand-off waiting was stored before it.
                foreach (var delivery in handedOff.Concat(claimed))
                {
                    Enqueue(delivery, slots, stoppingToken);
                }

                if (taken == 0)
                {
                    // Real time, not the injected clock: due times come from the clock, this is only how often to look.
                    pollNow = !await handOff.Signal.WaitAsync(settings.PollInterval, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        handOff.Close();
        Task[] running;
        lock (_lanes)
        {
            running = [.. _lanes.Values];
        }

        await Task.WhenAll(running);
        await ReleaseHandOffsAsync();
    }

    /// <summary>Up to <paramref name="max"/> deliveries handed over by this process's intake whose lease is still long enough to send them.</summary>
    private async Task<List<WebhookDelivery>> TakeHandOffsAsync(int max, DeliveryOptions settings, CancellationToken ct)
    {
        var taken = new List<WebhookDelivery>();
        var now = time.GetUtcNow().UtcDateTime;
        while (taken.Count < max && handOff.TryTake(out var delivery))
        {
            if (delivery.NextAttemptAt - now > settings.Timeout + LeaseMargin)
            {
                taken.Add(delivery);
            }
            else
            {
                await ReleaseAsync(delivery, ct);
            }
        }

        return taken;
    }

    /// <summary>Shutting down: hand-offs not sent yet are made due now, so a restart or another replica sends them without waiting for their lease.</summary>
    private async Task ReleaseHandOffsAsync()
    {
        while (handOff.TryTake(out var delivery))
        {
            await ReleaseAsync(delivery, CancellationToken.None);
        }
    }

    /// <summary>Gives a leased delivery back unsent: due now, for any worker.</summary>
    private async Task ReleaseAsync(WebhookDelivery d, CancellationToken ct)
    {
        d.NextAttemptAt = time.GetUtcNow().UtcDateTime;
        d.LeaseOwner = null;
        try
        {
            await deliveries.SaveAsync(d, ct);
            handOff.Signal.Wake();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Webhook delivery {DeliveryId} could not be given back; it is due again when its lease expires", d.Id);
        }
    }

    private void Enqueue(WebhookDelivery delivery, SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        var lane = $"{delivery.EndpointId ?? delivery.Url}|{delivery.Subject}";
        lock (_lanes)
        {
            var previous = _lanes.GetValueOrDefault(lane, Task.CompletedTask);
            Task next = null!;
            next = previous.ContinueWith(async _ =>
            {
                try
                {
                    await AttemptAsync(delivery, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    // the lease runs out and another start takes the delivery again
                }
                catch (Exception e)
                {
                    logger.LogError(e, "Webhook delivery {DeliveryId} failed unexpectedly; it is retried when its lease expires", delivery.Id);
                }
                finally
                {
                    slots.Release();
                    lock (_lanes)
                    {
                        if (_lanes.TryGetValue(lane, out var tail) && tail == next)
                        {
                            _lanes.Remove(lane);
                        }
                    }
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
            _lanes[lane] = next;
        }
    }

    /// <summary>One attempt of a claimed delivery and its stored outcome.</summary>
    internal async Task AttemptAsync(WebhookDelivery d, CancellationToken ct)
    {
        var settings = Settings;
        var url = d.Url;
        IReadOnlyList<string> secrets;
        WebhookEndpoint? endpoint = null;
        if (d.EndpointId is { } endpointId)
        {
            endpoint = await endpoints.GetAsync(endpointId, ct);
            if (endpoint is not { Enabled: true })
            {
                await FinishAsync(d, DeliveryStatus.Failed, endpoint is null ? "The endpoint was deleted." : $"The endpoint is disabled: {endpoint.DisabledReason}", ct);
                return;
            }

            url = endpoint.Url;
            var nowForKeys = time.GetUtcNow().UtcDateTime;
            secrets = endpoint.Keys.InForce(nowForKeys).Select(k => protector.Unprotect(k.Protected)).ToList();
        }
        else
        {
            secrets = await workspaceSecrets.ForSigningAsync(d.WorkspaceId, ct);
        }

        var started = time.GetUtcNow();
        var body = WebhookEvent.Envelope(d.EventType, d.Data, started.UtcDateTime);
        var outcome = await sender.SendAsync(url, d.EventId, started, body, secrets, ct);
        var now = time.GetUtcNow().UtcDateTime;
        d.Attempts.Add(new DeliveryAttempt
        {
            Number = d.Attempts.Count + 1,
            At = started.UtcDateTime,
            StatusCode = outcome.StatusCode,
            LatencyMs = outcome.LatencyMs,
            Response = outcome.Response,
            Error = outcome.Error,
        });

        if (outcome.Succeeded)
        {
            if (endpoint?.FailingSince is not null)
            {
                await endpoints.MarkSucceededAsync(endpoint.Id, ct);
            }

            await FinishAsync(d, DeliveryStatus.Succeeded, null, ct);
            return;
        }

        var error = outcome.Error ?? $"The receiver answered {outcome.StatusCode}.";
        if (outcome.Refused)
        {
            logger.LogWarning("Webhook delivery {DeliveryId} to {Url} refused: {Reason}", d.Id, url, outcome.Error);
            await FinishAsync(d, DeliveryStatus.Failed, error, ct);
            return;
        }

        if (outcome.StatusCode == 410)
        {
            if (endpoint is not null)
            {
                await endpoints.DisableAsync(endpoint.Id, now, "The receiver answered 410 Gone.", ct);
                logger.LogWarning("Webhook endpoint {EndpointId} disabled: its receiver answered 410 Gone", endpoint.Id);
            }

            await FinishAsync(d, DeliveryStatus.Failed, "The receiver answered 410 Gone; no more attempts.", ct);
            return;
        }

        if (endpoint is not null && await endpoints.MarkFailedAsync(endpoint.Id, now, settings.DisableEndpointAfter, ct))
        {
            logger.LogWarning("Webhook endpoint {EndpointId} disabled: failing for {Days} days", endpoint.Id, settings.DisableEndpointAfter.TotalDays);
            await FinishAsync(d, DeliveryStatus.Failed, $"{error} The endpoint was disabled after failing for {settings.DisableEndpointAfter.TotalDays:0.#} days.", ct);
            return;
        }

        var retries = d.Attempts.Count - d.AttemptsBeforeResend; // attempts in this round so far
        if (retries > settings.RetrySchedule.Count)
        {
            await FinishAsync(d, DeliveryStatus.Failed, $"{error} No attempts left.", ct);
            return;
        }

        var wait = outcome.RetryAfter is { } retryAfter
            ? (retryAfter > settings.MaxRetryAfter ? settings.MaxRetryAfter : retryAfter)
            : Jittered(settings.RetrySchedule[retries - 1], settings.Jitter);
        d.Status = DeliveryStatus.Pending;
        d.LastError = error;
        d.NextAttemptAt = now + wait;
        d.LeaseOwner = null;
        if (!await deliveries.SaveAsync(d, ct))
        {
            logger.LogWarning("Webhook delivery {DeliveryId} was taken over by another worker before its outcome was stored", d.Id);
        }
    }

    internal static TimeSpan Jittered(TimeSpan wait, double jitter) =>
        jitter <= 0 ? wait : wait * (1 + ((Random.Shared.NextDouble() * 2) - 1) * jitter);

    private async Task FinishAsync(WebhookDelivery d, DeliveryStatus status, string? error, CancellationToken ct)
    {
        d.Status = status;
        d.LastError = error;
        d.LeaseOwner = null;
        d.NextAttemptAt = DeliveryStore.Never;
        d.CompletedAt = time.GetUtcNow().UtcDateTime;
        if (!await deliveries.SaveAsync(d, ct))
        {
            logger.LogWarning("Webhook delivery {DeliveryId} was taken over by another worker before its outcome was stored", d.Id);
        }
    }
}
