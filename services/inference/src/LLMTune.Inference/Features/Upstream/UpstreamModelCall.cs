using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Upstream;

/// <summary>
/// A call to an OpenAI-compatible upstream: chat inputs go to <c>chat/completions</c>, raw prompts to
/// <c>completions</c>. Streams are read chunk by chunk and handed on as they arrive; usage is always requested so
/// metering sees real token counts.
/// </summary>
internal sealed class UpstreamModelCall : ModelCall
{
    private readonly string _model;
    private readonly UpstreamEndpoint _endpoint;
    private readonly bool _chat;
    private readonly HttpResponseMessage _response;
    private readonly StringBuilder _text = new();
    private int _promptTokens;
    private int _completionTokens;
    private int _chunks;
    private string? _finishReason;
    private bool _ended;

    private UpstreamModelCall(string model, UpstreamEndpoint endpoint, bool chat, HttpResponseMessage response)
    {
        _model = model;
        _endpoint = endpoint;
        _chat = chat;
        _response = response;
    }

    public override string Model => _model;

    /// <summary>Sends the request; failures before the first byte reached the client surface here as <see cref="UpstreamFailureException"/>.</summary>
    public static async Task<UpstreamModelCall> StartAsync(string modelId, UpstreamEndpoint endpoint, GenerationRequest generation, bool stream, string requestId, CancellationToken cancellationToken)
    {
        var chat = generation.Messages is not null;
        var body = new JsonObject { ["model"] = endpoint.UpstreamModel };
        if (chat)
        {
            body["messages"] = new JsonArray(generation.Messages!.Select(m => (JsonNode)new JsonObject
            {
                ["role"] = ChatPromptFormatter.RoleName(m.Role),
                ["content"] = m.Content,
            }).ToArray());
        }
        else
        {
            body["prompt"] = generation.Prompt;
        }

        if (generation.MaxTokens is { } maxTokens)
        {
            body["max_tokens"] = maxTokens;
        }

        body["temperature"] = generation.Temperature;
        body["top_p"] = generation.TopP;
        if (generation.Stop.Count > 0)
        {
            body["stop"] = new JsonArray(generation.Stop.Select(s => (JsonNode)JsonValue.Create(s)).ToArray());
        }

        if (generation.Seed is { } seed)
        {
            body["seed"] = seed;
        }

        body["stream"] = stream;
        if (stream)
        {
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        var response = await endpoint.PostAsync(chat ? "chat/completions" : "completions", body, stream, requestId, cancellationToken).ConfigureAwait(false);
        var call = new UpstreamModelCall(modelId, endpoint, chat, response);
        if (!stream)
        {
            try
            {
                call.ReadWholeAnswer(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }

        return call;
    }

    public override async IAsyncEnumerable<string> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_ended)
        {
            if (_text.Length > 0)
            {
                yield return _text.ToString();
            }

            yield break;
        }

        var stream = await _response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        while (true)
        {
            idle.CancelAfter(_endpoint.Options.ReadTimeout);
            string? line;
            try
            {
                line = await reader.ReadLineAsync(idle.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new UpstreamFailureException(StatusCodes.Status504GatewayTimeout, "upstream_timeout",
                    $"The upstream for '{_model}' stopped sending for {_endpoint.Options.ReadTimeout.TotalSeconds:0.###} s.");
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                    $"The upstream for '{_model}' broke off its stream: {e.Message}");
            }

            if (line is null)
            {
                break;
            }

            if (!line.StartsWith("data:", StringComparison.Ordinal))
            {
                continue; // comments, event names, keep-alives and blank separators
            }

            var data = line.AsSpan(5).Trim();
            if (data.SequenceEqual("[DONE]"))
            {
                break;
            }

            var delta = ReadChunk(data.ToString());
            if (!string.IsNullOrEmpty(delta))
            {
                _chunks++;
                _text.Append(delta);
                yield return delta;
            }
        }

        _ended = true;
    }

    public override Task<InferenceOutcome> CompleteAsync(CancellationToken cancellationToken) => Task.FromResult(Snapshot());

    public override InferenceOutcome Snapshot() => new(
        _model,
        _text.ToString(),
        _promptTokens,
        // Without a usage report (cut short), each content chunk is about one token.
        _completionTokens > 0 ? _completionTokens : _chunks,
        _ended ? _finishReason ?? InferenceOutcome.Stop : InferenceOutcome.Cancelled);

    public override ValueTask DisposeAsync()
    {
        _response.Dispose();
        return ValueTask.CompletedTask;
    }

    private void ReadWholeAnswer(string json)
    {
        try
        {
            var root = JsonNode.Parse(json)!;
            var choice = root["choices"]?[0];
            _text.Append((_chat ? choice?["message"]?["content"] : choice?["text"])?.GetValue<string>() ?? "");
            _finishReason = choice?["finish_reason"]?.GetValue<string>();
            ReadUsage(root["usage"]);
            _chunks = 1;
            _ended = true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                $"The upstream for '{_model}' sent an answer that is not an OpenAI completion: {e.Message}");
        }
    }

    /// <summary>Reads one streamed chunk; returns its text delta and remembers finish reason and usage.</summary>
    private string? ReadChunk(string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                $"The upstream for '{_model}' sent a malformed chunk: {e.Message}");
        }

        if (root?["error"] is JsonObject error)
        {
            throw new UpstreamFailureException(StatusCodes.Status502BadGateway, "upstream_error",
                $"The upstream for '{_model}' failed mid-stream: {error["message"]}");
        }

        ReadUsage(root?["usage"]);
        var choice = root?["choices"] is JsonArray { Count: > 0 } choices ? choices[0] : null;
        if (choice?["finish_reason"] is JsonValue finish && finish.GetValueKind() == JsonValueKind.String)
        {
            _finishReason = finish.GetValue<string>();
        }

        var text = _chat ? choice?["delta"]?["content"] : choice?["text"];
        return text is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
    }

    private void ReadUsage(JsonNode? usage)
    {
        if (usage is JsonObject)
        {
            _promptTokens = usage["prompt_tokens"]?.GetValue<int>() ?? _promptTokens;
            _completionTokens = usage["completion_tokens"]?.GetValue<int>() ?? _completionTokens;
        }
    }
}
