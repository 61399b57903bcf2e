using System.Buffers;
using System.Text.Json;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Upstream;

/// <summary>An OpenAI-compatible request body as the client sent it, and the upstream path it belongs to.</summary>
public sealed record UpstreamRequest(string Path, ReadOnlyMemory<byte> Body);

/// <summary>
/// OpenAI-compatible calls to an upstream model are a transparent pass-through: the client's body goes upstream
/// byte for byte with only <c>model</c> replaced by the configured upstream name (every field, tool, content part and
/// unknown parameter included, no defaults added), and the answer comes back as the upstream wrote it, JSON or SSE
/// events relayed as they arrive, with only <c>model</c> set back to the id the client called (or the fallback that
/// answered). Usage is read on the way for metering; a stream whose client did not ask for usage is metered by its
/// content chunks (about one token each).
/// </summary>
internal static class UpstreamPassthrough
{
    /// <summary>Sends the request; failures before any byte reached the client throw <see cref="UpstreamFailureException"/>.</summary>
    public static async Task<HttpResponseMessage> StartAsync(UpstreamServedModel model, UpstreamRequest request, bool stream, InferenceCaller caller, CancellationToken cancellationToken)
    {
        var body = JsonBodyEdit.ReplaceTopLevelString(request.Body, "model", model.Endpoint.UpstreamModel);
        return await model.Endpoint.PostAsync(request.Path, body, stream, caller.RequestId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Copies the started answer to the client and returns what it used, for metering.</summary>
    public static async Task<InferenceOutcome> RelayAsync(HttpContext http, UpstreamServedModel model, HttpResponseMessage answer, bool stream)
    {
        using (answer)
        {
            var usage = new UsageReader(model.Id);
            if (!stream)
            {
                var bytes = await answer.Content.ReadAsByteArrayAsync(http.RequestAborted).ConfigureAwait(false);
                usage.ReadAnswer(bytes);
                http.Response.StatusCode = StatusCodes.Status200OK;
                http.Response.ContentType = "application/json";
                // Written straight into the response's buffer: the upstream's bytes with only the model's value swapped.
                http.Response.ContentLength = JsonBodyEdit.WriteReplacingTopLevelString(bytes, "model", usage.EncodedModel, http.Response.BodyWriter);
                await http.Response.BodyWriter.FlushAsync(http.RequestAborted).ConfigureAwait(false);
                return usage.Outcome(ended: true);
            }

            await ServerSentEvents.StartAsync(http.Response).ConfigureAwait(false);
            var ended = false;
            try
            {
                await using var upstream = await answer.Content.ReadAsStreamAsync(http.RequestAborted).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
                try
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
                    while (true)
                    {
                        idle.CancelAfter(model.Endpoint.Options.ReadTimeout);
                        int read;
                        try
                        {
                            read = await upstream.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (!http.RequestAborted.IsCancellationRequested)
                        {
                            throw new UpstreamFailureException(StatusCodes.Status504GatewayTimeout, "upstream_timeout",
                                $"The upstream for '{model.Id}' stopped sending for {model.Endpoint.Options.ReadTimeout.TotalSeconds:0.###} s.");
                        }
                        catch (Exception e) when (e is IOException or HttpRequestException)
                        {
                            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                                $"The upstream for '{model.Id}' broke off its stream: {e.Message}");
                        }

                        if (read == 0)
                        {
                            ended = true;
                            break;
                        }

                        // Every complete line is relayed and flushed as soon as it is read: nothing is held back to batch.
                        usage.RelayLines(buffer.AsSpan(0, read), http.Response.BodyWriter);
                        await http.Response.BodyWriter.FlushAsync(http.RequestAborted).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
            {
                // The client left; what it received is still metered.
            }
            catch (ApiException failure)
            {
                // The status is long sent: the error becomes the stream's last event.
                await ServerSentEvents.WriteAsync(http.Response, failure.Body(http), OpenAiCompatible.OpenAiJson.Options).ConfigureAwait(false);
            }

            return usage.Outcome(ended);
        }
    }

    /// <summary>Finds usage, finish reason and content chunks in an OpenAI answer or stream without changing it.</summary>
    private sealed class UsageReader(string model)
    {
        private readonly List<byte> _line = [];
        private int _promptTokens;
        private int _completionTokens;
        private int _contentChunks;
        private string? _finishReason;

        /// <summary>The client's model id as a JSON string value (escaped once per request, not per chunk).</summary>
        public JsonEncodedText EncodedModel { get; } = JsonEncodedText.Encode(model);

        public InferenceOutcome Outcome(bool ended) => new(
            model, "", _promptTokens, _completionTokens > 0 ? _completionTokens : _contentChunks,
            ended ? _finishReason ?? InferenceOutcome.Stop : InferenceOutcome.Cancelled);

        public void ReadAnswer(byte[] json)
        {
            if (!TryRead(json))
            {
                throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                    $"The upstream for '{model}' sent an answer that is not JSON.");
            }
        }

        /// <summary>Writes each complete SSE line on to <paramref name="output"/> (data lines with the client's model id).</summary>
        public void RelayLines(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
        {
            foreach (var b in bytes)
            {
                if (b != (byte)'\n')
                {
                    _line.Add(b);
                    continue;
                }

                var line = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_line);
                var data = line.StartsWith("data:"u8) ? line[5..].Trim((byte)' ').TrimEnd((byte)'\r') : default;
                if (line.StartsWith("data:"u8) && !data.SequenceEqual("[DONE]"u8) && TryRead(data))
                {
                    output.Write("data: "u8);
                    JsonBodyEdit.WriteReplacingTopLevelString(data, "model", EncodedModel, output);
                }
                else
                {
                    output.Write(line);
                }

                output.Write("\n"u8);
                _line.Clear();
            }
        }

        private bool TryRead(ReadOnlySpan<byte> json)
        {
            try
            {
                var reader = new Utf8JsonReader(json);
                using var document = JsonDocument.ParseValue(ref reader);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    return false;
                }

                if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                {
                    _promptTokens = Int(usage, "prompt_tokens") ?? _promptTokens;
                    _completionTokens = Int(usage, "completion_tokens") ?? _completionTokens;
                }

                if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
                {
                    var choice = choices[0];
                    if (choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String)
                    {
                        _finishReason = finish.GetString();
                    }

                    if (HasContent(choice))
                    {
                        _contentChunks++;
                    }
                }

                return true;
            }
            catch (JsonException)
            {
                return false;
            }
        }

        private static bool HasContent(JsonElement choice) =>
            (choice.TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object
                && (NonEmpty(delta, "content") || delta.TryGetProperty("tool_calls", out _)))
            || NonEmpty(choice, "text");

        private static bool NonEmpty(JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 };

        private static int? Int(JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : null;
    }
}

/// <summary>Edits a JSON body without re-serialising it, so everything else stays byte for byte.</summary>
internal static class JsonBodyEdit
{
    /// <summary>The body with the top-level string property <paramref name="name"/> set to <paramref name="value"/>.</summary>
    public static ReadOnlyMemory<byte> ReplaceTopLevelString(ReadOnlyMemory<byte> body, string name, string value)
    {
        if (!TryFindTopLevelString(body.Span, name, out var start, out var end))
        {
            return body;
        }

        var writer = new ArrayBufferWriter<byte>(body.Length + value.Length + 2);
        WriteReplaced(body.Span, start, end, JsonEncodedText.Encode(value), writer);
        return writer.WrittenMemory;
    }

    /// <summary>
    /// Writes <paramref name="body"/> to <paramref name="output"/> with the top-level string property
    /// <paramref name="name"/> set to <paramref name="value"/> (as is when there is none); returns the bytes written.
    /// </summary>
    public static long WriteReplacingTopLevelString(ReadOnlySpan<byte> body, string name, JsonEncodedText value, IBufferWriter<byte> output)
    {
        if (!TryFindTopLevelString(body, name, out var start, out var end))
        {
            output.Write(body);
            return body.Length;
        }

        return WriteReplaced(body, start, end, value, output);
    }

    private static long WriteReplaced(ReadOnlySpan<byte> body, int start, int end, JsonEncodedText value, IBufferWriter<byte> output)
    {
        output.Write(body[..start]);
        output.Write("\""u8);
        output.Write(value.EncodedUtf8Bytes);
        output.Write("\""u8);
        output.Write(body[end..]);
        return body.Length - (end - start) + value.EncodedUtf8Bytes.Length + 2;
    }

    /// <summary>Where the value of a top-level string property is: from its opening quote to just after the closing one.</summary>
    private static bool TryFindTopLevelString(ReadOnlySpan<byte> body, string name, out int start, out int end)
    {
        start = end = 0;
        var reader = new Utf8JsonReader(body);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isTarget = reader.CurrentDepth == 1 && reader.ValueTextEquals(name);
                reader.Read();
                if (isTarget && reader.TokenType == JsonTokenType.String)
                {
                    start = (int)reader.TokenStartIndex;
                    end = (int)reader.BytesConsumed;
                    return true;
                }

                reader.TrySkip();
            }
        }
        catch (JsonException)
        {
            // Not JSON after all: left as it is.
        }

        return false;
    }
}
