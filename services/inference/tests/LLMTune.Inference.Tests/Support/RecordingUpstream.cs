using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Inference.Tests.Support;

/// <summary>
/// An OpenAI-shaped server on loopback that records every request body it receives and answers each path with a
/// fixed body (JSON, or SSE when the answer is set as events), so tests see exactly what crosses the wire both ways.
/// </summary>
public sealed class RecordingUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RecordingUpstream(WebApplication app) => _app = app;

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>(path, body bytes) of every request, in arrival order.</summary>
    public ConcurrentQueue<(string Path, byte[] Body)> Received { get; } = new();

    /// <summary>The JSON answer per path, e.g. <c>/v1/chat/completions</c>.</summary>
    public ConcurrentDictionary<string, string> Answers { get; } = new();

    /// <summary>A JSON answer computed from the request body per path; takes precedence over <see cref="Answers"/>.</summary>
    public ConcurrentDictionary<string, Func<byte[], string>> Responders { get; } = new();

    /// <summary>The SSE answer (raw text, events included) per path, used when the request asks to stream.</summary>
    public ConcurrentDictionary<string, string> StreamAnswers { get; } = new();

    public static async Task<RecordingUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(["--urls=http://127.0.0.1:0"]);
        var app = builder.Build();
        var upstream = new RecordingUpstream(app);
        app.Run(upstream.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.BaseUrl = new Uri(address.TrimEnd('/') + "/v1");
        return upstream;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var bytes = body.ToArray();
        var path = context.Request.Path.Value!;
        Received.Enqueue((path, bytes));
        var streaming = System.Text.Encoding.UTF8.GetString(bytes).Contains("\"stream\":true", StringComparison.Ordinal);
        if (streaming && StreamAnswers.TryGetValue(path, out var events))
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync(events);
            return;
        }

        if (Responders.TryGetValue(path, out var responder))
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(responder(bytes));
            return;
        }

        if (!Answers.TryGetValue(path, out var answer))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
