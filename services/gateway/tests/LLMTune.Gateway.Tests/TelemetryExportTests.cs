using System.Collections.Concurrent;
using LLMTune.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Gateway.Tests;

/// <summary>With OTEL_EXPORTER_OTLP_ENDPOINT set, the host exports its traces and metrics to that collector over OTLP.</summary>
public sealed class TelemetryExportTests
{
    [Fact]
    public async Task Traces_and_metrics_reach_the_configured_otlp_endpoint()
    {
        var received = new ConcurrentBag<string>();
        var collectorBuilder = WebApplication.CreateBuilder(["--urls=http://127.0.0.1:0"]);
        await using var collector = collectorBuilder.Build();
        collector.MapPost("/v1/{signal}", (string signal, HttpRequest request) =>
        {
            received.Add(signal);
            return Results.Ok();
        });
        await collector.StartAsync();
        var collectorAddress = collector.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collectorAddress,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "200",
        });
        using var client = host.Client(host.InitialKey);
        (await client.GetAsync("/v1/keys")).EnsureSuccessStatusCode();

        await Eventually.True(() => received.Contains("traces") && received.Contains("metrics"), TimeSpan.FromSeconds(30),
            "OTLP traces and metrics at the collector");
    }
}
