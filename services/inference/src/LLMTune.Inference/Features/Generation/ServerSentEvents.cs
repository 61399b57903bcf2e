using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LLMTune.Inference.Features.Generation;

/// <summary>Server-sent events: one JSON object per <c>data:</c> line, flushed as soon as it is produced.</summary>
internal static class ServerSentEvents
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private const int MaxUnflushedEvents = 8;

    public static async Task StartAsync(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // proxies such as nginx must not hold events back
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Writes one event; <paramref name="flush"/> false leaves it buffered for <see cref="RelayAsync"/> to flush.</summary>
    public static async Task WriteAsync<T>(HttpResponse response, T value, JsonSerializerOptions options, string? eventName = null, bool flush = true)
    {
        var writer = response.BodyWriter;
        if (eventName is not null)
        {
            writer.Write(Encoding.UTF8.GetBytes($"event: {eventName}\n"));
        }

        writer.Write(DataPrefix);
        using (var json = new Utf8JsonWriter(writer))
        {
            JsonSerializer.Serialize(json, value, options);
        }

        writer.Write(EventEnd);
        if (flush)
        {
            await writer.FlushAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
        }
    }

    public static async Task WriteRawAsync(HttpResponse response, string data)
    {
        response.BodyWriter.Write(Encoding.UTF8.GetBytes($"data: {data}\n\n"));
        await response.BodyWriter.FlushAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a started call as events in the endpoint's format: a delta per text piece, then the end. A failure after
    /// the first byte can no longer change the status, so it becomes an error event. A client that leaves ends the loop
    /// quietly; the session (disposed by the caller) stops the generation and meters it.
    /// </summary>
    public static async Task RelayAsync(HttpContext http, ModelCall call, InferenceSession session, IInferenceFormat format)
    {
        try
        {
            var tokens = call.StreamDeltasAsync(http.RequestAborted).GetAsyncEnumerator(http.RequestAborted);
            await using (tokens.ConfigureAwait(false))
            {
                var unflushed = 0;
                while (true)
                {
                    // Events are flushed when the next piece is not ready yet (nothing waits in the buffer while the
                    // model works) or when a few have piled up (a reader that lags still gets a steady stream).
                    var next = tokens.MoveNextAsync();
                    if (unflushed > 0 && (!next.IsCompleted || unflushed >= MaxUnflushedEvents))
                    {
                        await http.Response.BodyWriter.FlushAsync(http.RequestAborted).ConfigureAwait(false);
                        unflushed = 0;
                    }

                    if (!await next.ConfigureAwait(false))
                    {
                        break;
                    }

                    await format.StreamDeltaAsync(http.Response, call.Model, tokens.Current).ConfigureAwait(false);
                    unflushed++;
                }
            }

            var outcome = await call.CompleteAsync(http.RequestAborted).ConfigureAwait(false);
            await format.StreamEndAsync(http.Response, outcome, session.ElapsedMs).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected.
        }
        catch (Exception e) when (InferenceErrors.MidCall(e) is { } failure)
        {
            await format.StreamErrorAsync(http.Response, failure.Body(http)).ConfigureAwait(false);
        }
    }
}
