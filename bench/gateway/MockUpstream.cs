using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LLMTune.Bench.Gateway;

/// <summary>
/// An OpenAI-shaped upstream that costs as little as possible: <c>POST /v1/chat/completions</c> answers a fixed chat
/// completion, or with <c>"stream": true</c> a fixed stream whose first chunk is flushed alone, then the rest after a
/// pause (so a proxy that batched chunks would show it). It records when each stream's first chunk left, on the same
/// clock as the bench's client, so the first-chunk delay through LLMTune is measured, not inferred.
/// </summary>
public sealed class MockUpstream : IAsyncDisposable
{
    public const string Model = "mock-model";

    private static readonly byte[] Completion =
        """{"id":"chatcmpl-bench","object":"chat.completion","created":1764000000,"model":"mock-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the bench's mock upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}"""u8.ToArray();

    private static readonly byte[] FirstChunk =
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n"u8.ToArray();

    private static readonly byte[] Rest = System.Text.Encoding.UTF8.GetBytes(
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n"
        + "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}\n\n"
        + "data: [DONE]\n\n");

    private readonly WebApplication _app;
    private long _firstChunkSentAt;

    private MockUpstream(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The server root, e.g. <c>http://127.0.0.1:5123/</c>; the OpenAI API root is <c>v1/</c> under it.</summary>
    public Uri Address { get; }

    /// <summary>Pause between the first chunk and the rest of a stream.</summary>
    public static TimeSpan StreamPause { get; } = TimeSpan.FromMilliseconds(3);

    /// <summary><see cref="Stopwatch.GetTimestamp"/> just before the last stream's first chunk was flushed.</summary>
    public long FirstChunkSentAt => Interlocked.Read(ref _firstChunkSentAt);

    public static async Task<MockUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");
        MockUpstream? mock = null;
        app.MapPost("/v1/chat/completions", async http =>
        {
            // Read the whole body (a real upstream does), then look for the stream flag without a JSON parse.
            var body = http.Request.BodyReader;
            var streaming = false;
            while (true)
            {
                var read = await body.ReadAsync();
                if (!streaming && read.Buffer.FirstSpan.IndexOf("\"stream\":true"u8) >= 0)
                {
                    streaming = true;
                }

                body.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }

            if (!streaming)
            {
                http.Response.ContentType = "application/json";
                http.Response.ContentLength = Completion.Length;
                await http.Response.Body.WriteAsync(Completion);
                return;
            }

            http.Response.ContentType = "text/event-stream";
            await http.Response.StartAsync();
            await http.Response.Body.WriteAsync(FirstChunk);
            Interlocked.Exchange(ref mock!._firstChunkSentAt, Stopwatch.GetTimestamp());
            await http.Response.Body.FlushAsync();
            await Task.Delay(StreamPause);
            await http.Response.Body.WriteAsync(Rest);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        mock = new MockUpstream(app, new Uri(address.TrimEnd('/') + "/"));
        return mock;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
