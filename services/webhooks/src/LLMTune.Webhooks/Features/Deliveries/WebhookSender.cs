using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using LLMTune.Platform.Http;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>What one attempt came to.</summary>
public sealed record AttemptOutcome(int? StatusCode, long LatencyMs, string? Response, string? Error, TimeSpan? RetryAfter, bool Refused)
{
    public bool Succeeded => StatusCode is >= 200 and < 300 && Error is null;
}

/// <summary>
/// Sends one signed POST. Connections go only to allowed addresses (<see cref="GuardedConnection"/>, checked on the
/// address connected to), redirects are not followed, a 2xx must come within <c>Webhooks:Delivery:Timeout</c>.
/// Not an IHttpClientFactory client: the platform's default resilience handler would retry, and retries here are stored.
/// </summary>
public sealed class WebhookSender : IDisposable
{
    private const int MaxResponseBytes = 1024;
    private readonly HttpClient _client;
    private readonly DestinationPolicy _policy;
    private readonly IOptions<WebhooksOptions> _options;
    private readonly TimeProvider _time;

    public WebhookSender(DestinationPolicy policy, IOptions<WebhooksOptions> options, TimeProvider time)
    {
        _policy = policy;
        _options = options;
        _time = time;
        var handler = GuardedConnection.CreateHandler(policy.AllowList);
        handler.PooledConnectionLifetime = TimeSpan.FromMinutes(5); // picks up DNS changes; each new connection is checked again
        handler.MaxConnectionsPerServer = 256;
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd("LLMTune-Webhooks/1.0");
    }

    public async Task<AttemptOutcome> SendAsync(string url, string webhookId, DateTimeOffset now, string body, IReadOnlyList<string> secrets, CancellationToken ct)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || _policy.SchemeProblem(uri) is { } problem)
        {
            return new AttemptOutcome(null, 0, null, $"Refused: {(uri is null ? "not an absolute URL." : _policy.SchemeProblem(uri))}", null, Refused: true);
        }

        var timestamp = now.ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("webhook-id", webhookId);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", Signatures.Header(secrets, webhookId, timestamp, body));

        // On the injected clock, so the timeout is testable; linked to the caller's token for shutdown.
        var limit = _options.Value.Delivery.Timeout;
        using var deadline = new CancellationTokenSource(limit, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var answer = await ReadStartAsync(response, timeout.Token);
            var status = (int)response.StatusCode;
            var error = status is >= 300 and < 400 ? $"Redirects are not followed (answered {status}{Location(response)})." : null;
            return new AttemptOutcome(status, clock.ElapsedMilliseconds, answer, error, RetryAfter(response, now), Refused: false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new AttemptOutcome(null, clock.ElapsedMilliseconds, null, $"No answer within {limit.TotalSeconds:0.#} s.", null, Refused: false);
        }
        catch (HttpRequestException e) when (GuardedConnection.RefusalIn(e) is { } refused)
        {
            return new AttemptOutcome(null, clock.ElapsedMilliseconds, null, $"Refused: {refused.Message}", null, Refused: true);
        }
        catch (HttpRequestException e)
        {
            return new AttemptOutcome(null, clock.ElapsedMilliseconds, null, $"Connection failed: {e.Message}", null, Refused: false);
        }
    }

    private static string Location(HttpResponseMessage response) =>
        response.Headers.Location is { } location ? $" to {location}" : "";

    private static TimeSpan? RetryAfter(HttpResponseMessage response, DateTimeOffset now)
    {
        if (response.StatusCode is not (HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable) || response.Headers.RetryAfter is not { } retry)
        {
            return null;
        }

        var wait = retry.Delta ?? (retry.Date is { } date ? date - now : null);
        return wait is { } w && w > TimeSpan.Zero ? w : null;
    }

    private static async Task<string?> ReadStartAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[MaxResponseBytes];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return read == 0 ? null : Encoding.UTF8.GetString(buffer, 0, read);
    }

    public void Dispose() => _client.Dispose();
}
