using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Webhooks.Tests.Support;

/// <summary>The real host (all modules) with 127.0.0.1 allow-listed for webhooks and, optionally, a fake clock.</summary>
public sealed class WebhooksHost : IAsyncDisposable
{
    private WebhooksHost(TestHost host, FakeTimeProvider? clock)
    {
        Host = host;
        Clock = clock;
    }

    public TestHost Host { get; }
    public FakeTimeProvider? Clock { get; }
    public string DataDirectory => Host.DataDirectory;

    public static async Task<WebhooksHost> StartAsync(FakeTimeProvider? clock = null, string? dataDirectory = null, IDictionary<string, string?>? overrides = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Outbound:AllowedHosts:0"] = "127.0.0.1",
            ["Webhooks:Delivery:Jitter"] = "0",
            ["Webhooks:Delivery:PollInterval"] = "00:00:00.050",
            ["Finetune:Worker:PollInterval"] = "00:00:00.200",
            ["Finetune:Training:Threads"] = "2",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var host = await TestHost.StartAsync(settings: settings, dataDirectory: dataDirectory, configure: clock is null ? null : b => b.Services.AddSingleton<TimeProvider>(clock));
        return new WebhooksHost(host, clock);
    }

    public HttpClient Client() => Host.Client(Host.InitialKey);

    public T Service<T>() where T : notnull => Host.Services.GetRequiredService<T>();

    public Task PublishAsync<T>(T message) where T : class => Service<IBus>().Publish(message);

    /// <summary>Creates an endpoint; returns its id, its secret (shown once) and the workspace it belongs to.</summary>
    public async Task<(string Id, string Secret, string WorkspaceId)> CreateEndpointAsync(string url, params string[] events)
    {
        using var client = Client();
        var created = await (await client.PostAsJsonAsync("/v1/webhooks/endpoints", new { url, events, description = "test receiver" })).Json(HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString()!;
        var stored = await Service<EndpointStore>().GetAsync(id, CancellationToken.None);
        return (id, created.GetProperty("secret").GetString()!, stored!.WorkspaceId);
    }

    public async Task<JsonElement> DeliveryAsync(string deliveryId)
    {
        using var client = Client();
        return await (await client.GetAsync($"/v1/webhooks/deliveries/{deliveryId}")).Json();
    }

    /// <summary>Polls the delivery log until <paramref name="done"/> holds for the delivery.</summary>
    /// <remarks>404 until the event has been consumed and the delivery stored.</remarks>
    public async Task<JsonElement> WaitForDeliveryAsync(string deliveryId, Func<JsonElement, bool> done, string what)
    {
        using var client = Client();
        var found = await Eventually.Get<JsonElement?>(async () =>
        {
            using var response = await client.GetAsync($"/v1/webhooks/deliveries/{deliveryId}");
            return response.StatusCode == HttpStatusCode.NotFound ? null : await response.Json();
        }, d => d is { } x && done(x), TimeSpan.FromSeconds(30), what);
        return found!.Value;
    }

    public async Task<List<JsonElement>> DeliveriesAsync(string query = "")
    {
        using var client = Client();
        var page = await (await client.GetAsync($"/v1/webhooks/deliveries?limit=100{query}")).Json();
        return page.GetProperty("data").EnumerateArray().ToList();
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
