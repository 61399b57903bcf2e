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

    public static async Task StartAsync(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // proxies such as nginx must not hold events back
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
    }

    public static async Task WriteAsync<T>(HttpResponse response, T value, JsonSerializerOptions options, string? eventName = null)
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
        await writer.FlushAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
    }

    public static async Task WriteRawAsync(HttpResponse response, string data)
    {
        response.BodyWriter.Write(Encoding.UTF8.GetBytes($"data: {data}\n\n"));
        await response.BodyWriter.FlushAsync(response.HttpContext.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a started call as events: <paramref name="delta"/> per text piece, then <paramref name="end"/>.
    /// A failure after the first byte can no longer change the status, so it becomes an error event. A client that
    /// leaves ends the loop quietly; the session (disposed by the caller) stops the generation and meters it.
    /// </summary>
    public static async Task RelayAsync(
        HttpContext http,
        ModelCall call,
        Func<string, Task> delta,
        Func<InferenceOutcome, Task> end,
        Func<InferenceException, Task> error)
    {
        try
        {
            await foreach (var text in call.StreamAsync(http.RequestAborted).ConfigureAwait(false))
            {
                await delta(text).ConfigureAwait(false);
            }

            await end(await call.CompleteAsync(http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected.
        }
        catch (Exception e) when (InferenceErrorFilter.Translate(e) is { } failure)
        {
            await error(failure).ConfigureAwait(false);
        }
    }

    /// <summary>The error body written into a stream that already started.</summary>
    public static Platform.Errors.ApiErrorBody ErrorBody(HttpContext http, InferenceException e) =>
        Platform.Errors.ApiErrors.Body(http, e.Status, e.Code, e.Message, e.Param);
}
