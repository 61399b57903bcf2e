using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LLMTune.Webhooks.Tests.Support;

/// <summary>One request the receiver got.</summary>
public sealed record Received(string Path, string Body, IHeaderDictionary Headers, int AnsweredWith)
{
    public string WebhookId => Headers["webhook-id"].ToString();
    public string Event => System.Text.Json.JsonDocument.Parse(Body).RootElement.GetProperty("event").GetString()!;
}

/// <summary>A scripted answer: status, an optional Retry-After or Location, and optionally held until <paramref name="Hold"/> completes.</summary>
public sealed record Reply(int Status, string? RetryAfter = null, string? Location = null, Task? Hold = null, string? Body = null);

/// <summary>A customer's webhook receiver: a real Kestrel server on 127.0.0.1 that answers from a script (then 200).</summary>
public sealed class Receiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Received> _received = new();
    private readonly ConcurrentQueue<Reply> _script = new();

    private Receiver(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }
    public IReadOnlyList<Received> Requests => _received.ToList();
    public string Url(string path = "/hooks") => new Uri(Address, path).AbsoluteUri;

    public void Then(params Reply[] replies)
    {
        foreach (var reply in replies)
        {
            _script.Enqueue(reply);
        }
    }

    public static async Task<Receiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration["urls"] = "http://127.0.0.1:0";
        builder.Logging.ClearProviders();
        var app = builder.Build();
        Receiver? self = null;
        app.MapPost("/{**path}", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            var reply = self!._script.TryDequeue(out var scripted) ? scripted : new Reply(200);
            var headers = new HeaderDictionary();
            foreach (var (key, value) in http.Request.Headers)
            {
                headers[key] = value;
            }

            self._received.Enqueue(new Received(http.Request.Path, body, headers, reply.Status));
            if (reply.Hold is { } hold)
            {
                await hold.WaitAsync(http.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            }

            if (reply.Location is not null)
            {
                http.Response.Headers.Location = reply.Location;
            }

            http.Response.StatusCode = reply.Status;
            if (reply.RetryAfter is not null)
            {
                http.Response.Headers.RetryAfter = reply.RetryAfter;
            }

            await http.Response.WriteAsync(reply.Body ?? $"answer {reply.Status}");
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new Receiver(app, new Uri(address));
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
