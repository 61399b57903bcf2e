using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace LLMTune.Inference.Features.Upstream;

/// <summary>
/// One upstream model: where it lives, its key, and its Polly pipeline (retry with backoff on connection errors and
/// 5xx, a circuit breaker, a per-attempt timeout). The pipeline only covers getting the response headers (and the
/// whole body when not streaming): nothing has been sent to our client yet, so retrying is safe.
/// </summary>
public sealed class UpstreamEndpoint
{
    public const string HttpClientName = "llmtune-upstream";

    private readonly IHttpClientFactory _clients;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly string? _apiKey;

    public UpstreamEndpoint(string modelId, UpstreamOptions options, IHttpClientFactory clients, TimeProvider time)
    {
        ModelId = modelId;
        Options = options;
        UpstreamModel = string.IsNullOrEmpty(options.Model) ? modelId : options.Model;
        _clients = clients;
        _apiKey = options.ResolveApiKey();
        _pipeline = BuildPipeline(options, time);
    }

    public string ModelId { get; }

    public string UpstreamModel { get; }

    public UpstreamOptions Options { get; }

    /// <summary>POSTs <paramref name="body"/> to <paramref name="path"/> (relative to the base URL) through the pipeline.</summary>
    /// <exception cref="UpstreamFailureException">The upstream failed, timed out, or its circuit is open.</exception>
    /// <param name="requestId">Our request id, sent as <c>x-request-id</c> so both sides' logs (and an LLMTune upstream's metering) line up.</param>
    public Task<HttpResponseMessage> PostAsync(string path, JsonObject body, bool stream, string requestId, CancellationToken cancellationToken) =>
        PostAsync(path, System.Text.Encoding.UTF8.GetBytes(body.ToJsonString()), stream, requestId, cancellationToken);

    /// <summary>POSTs a JSON <paramref name="payload"/> exactly as given (the pass-through of a client's own body).</summary>
    public async Task<HttpResponseMessage> PostAsync(string path, ReadOnlyMemory<byte> payload, bool stream, string requestId, CancellationToken cancellationToken)
    {
        var url = new Uri(Options.BaseUrl!.AbsoluteUri.TrimEnd('/') + "/" + path);
        HttpResponseMessage response;
        try
        {
            response = await _pipeline.ExecuteAsync(async token =>
            {
                // A request message can be sent once: build one per attempt.
                using var request = new HttpRequestMessage(HttpMethod.Post, url)
                {
                    Content = new ReadOnlyMemoryContent(payload) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
                };
                if (!string.IsNullOrEmpty(_apiKey))
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
                }

                request.Headers.TryAddWithoutValidation("x-request-id", requestId);
                if (stream)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                }

                var client = _clients.CreateClient(HttpClientName);
                var answer = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
                if (!stream || !answer.IsSuccessStatusCode)
                {
                    await answer.Content.LoadIntoBufferAsync(token).ConfigureAwait(false);
                }

                return answer;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException)
        {
            throw new UpstreamFailureException(StatusCodes.Status504GatewayTimeout, "upstream_timeout",
                $"The upstream for '{ModelId}' did not answer within {Options.AttemptTimeout.TotalSeconds:0.###} s.");
        }
        catch (BrokenCircuitException)
        {
            throw new UpstreamFailureException(StatusCodes.Status503ServiceUnavailable, "upstream_unavailable",
                $"The upstream for '{ModelId}' is failing; calls are paused for a while.", retryAfter: Options.CircuitBreakDuration);
        }
        catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                $"The upstream for '{ModelId}' could not be reached: {e.Message}");
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            throw await FailureFromAsync(response, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Translates an upstream error answer into ours: its own bad-request message, else a gateway error.</summary>
    private async Task<UpstreamFailureException> FailureFromAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var message = UpstreamErrorMessage(text) ?? response.ReasonPhrase ?? "no details";
        var status = (int)response.StatusCode;
        return response.StatusCode switch
        {
            HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity => new UpstreamFailureException(
                StatusCodes.Status400BadRequest, "invalid_request", $"The upstream for '{ModelId}' rejected the request: {message}"),
            HttpStatusCode.TooManyRequests => new UpstreamFailureException(
                StatusCodes.Status429TooManyRequests, "upstream_rate_limited", $"The upstream for '{ModelId}' is rate limiting: {message}",
                retryAfter: response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1)),
            _ => new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                $"The upstream for '{ModelId}' answered {status}: {message}"),
        };
    }

    private static string? UpstreamErrorMessage(string body)
    {
        try
        {
            return JsonNode.Parse(body)?["error"] switch
            {
                JsonObject error => error["message"]?.GetValue<string>(),
                JsonValue value => value.ToString(),
                _ => null,
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return body.Length > 200 ? body[..200] : body.Length > 0 ? body : null;
        }
    }

    private static ResiliencePipeline<HttpResponseMessage> BuildPipeline(UpstreamOptions options, TimeProvider time)
    {
        static bool ServerError(HttpResponseMessage r) => (int)r.StatusCode >= 500;
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time };
        if (options.MaxRetries > 0)
        {
            // Timeouts are not retried: a slow upstream would only get slower, and the client is waiting.
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>().Handle<HttpRequestException>().HandleResult(ServerError),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            });
        }

        return builder
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = options.CircuitFailureRatio,
                MinimumThroughput = options.CircuitMinimumThroughput,
                SamplingDuration = options.CircuitSamplingDuration,
                BreakDuration = options.CircuitBreakDuration,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(ServerError),
            })
            .AddTimeout(options.AttemptTimeout)
            .Build();
    }
}

/// <summary>An upstream failure already translated to the status and code our client gets.</summary>
public sealed class UpstreamFailureException : ApiException
{
    public UpstreamFailureException(int status, string code, string message, TimeSpan? retryAfter = null)
        : base(status, code, message)
    {
        RetryAfter = retryAfter;
    }

    /// <summary>Worth trying a fallback model: the upstream is down, slow or saturated (not a bad request).</summary>
    public bool IsAvailabilityFailure => Status >= 500 || Status == StatusCodes.Status429TooManyRequests;
}
