using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Testing;
using LLMTune.Webhooks;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// Webhook delivery throughput and latency on loopback, one run: N BatchCompleted events (each with its own
// webhookUrl) are published on the webhooks module's bus; a local receiver answers 200. Measures deliveries/s
// from the first publish to the last receipt, and event -> delivery latency (publish to receipt) p50/p99.
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5000;

var receiverBuilder = WebApplication.CreateSlimBuilder();
receiverBuilder.Configuration["urls"] = "http://127.0.0.1:0";
receiverBuilder.Logging.ClearProviders();
var receiver = receiverBuilder.Build();
var clock = Stopwatch.StartNew();
var published = new ConcurrentDictionary<string, long>();
var latencies = new ConcurrentBag<double>();
var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
var lastReceipt = 0L;
var duplicates = 0;
var warmedUp = 0;
receiver.MapPost("/hooks", async (HttpContext http) =>
{
    using var body = await JsonDocument.ParseAsync(http.Request.Body);
    var batchId = body.RootElement.GetProperty("data").GetProperty("batchId").GetString()!;
    var now = clock.ElapsedTicks;
    if (published.TryRemove(batchId, out var at))
    {
        latencies.Add((now - at) * 1000.0 / Stopwatch.Frequency);
        Interlocked.Exchange(ref lastReceipt, now);
        if (latencies.Count >= count)
        {
            done.TrySetResult();
        }
    }
    else if (batchId.StartsWith("warmup_", StringComparison.Ordinal))
    {
        Interlocked.Increment(ref warmedUp);
    }
    else
    {
        Interlocked.Increment(ref duplicates); // each event must reach its destination once
    }

    return Results.Ok();
});
await receiver.StartAsync();
var receiverUrl = new Uri(new Uri(receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/hooks").AbsoluteUri;

await using var service = await ModuleHost.StartAsync([new WebhooksModule()], new Dictionary<string, string?>
{
    ["Outbound:AllowedHosts:0"] = "127.0.0.1",
    ["Webhooks:EncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
    ["Serilog:MinimumLevel:Default"] = "Error",
});
var bus = service.Services.GetRequiredService<IBus>();

// The store's own pace, for scale: each delivery costs about three writes (insert, claim, outcome) plus reads.
var probe = service.Services.GetRequiredService<DeliveryStore>();
var probeClock = Stopwatch.StartNew();
for (var i = 0; i < 300; i++)
{
    await probe.TryInsertAsync(new WebhookDelivery { Id = $"probe_{i}", EventType = "probe", NextAttemptAt = DeliveryStore.Never, CreatedAt = DateTime.UtcNow }, CancellationToken.None);
}

Console.WriteLine($"store: {300 / probeClock.Elapsed.TotalSeconds:0} inserts/s on its own");

// Warm-up: JIT (tiered code reaches its optimised tier), connections, the workspace secret.
var warmUp = Math.Min(count, 1000);
for (var i = 0; i < warmUp; i++)
{
    await bus.Publish(new BatchCompleted("ws_bench", $"warmup_{i}", DateTimeOffset.UtcNow, $"warmup_{i}", "m", 1, 0, receiverUrl));
}

var warmUpClock = Stopwatch.StartNew();
while (Volatile.Read(ref warmedUp) < warmUp && warmUpClock.Elapsed < TimeSpan.FromMinutes(5))
{
    await Task.Delay(50);
}

await Task.Delay(1000);

Console.WriteLine($"webhooks bench: {count} deliveries to one local receiver, {Environment.ProcessorCount} cores, LiteDB store, in-memory bus");
var cpuAtStart = Environment.CpuUsage.TotalTime; // the whole process: bus, intake, store, worker, sender and the receiver
var start = clock.ElapsedTicks;
for (var i = 0; i < count; i++)
{
    var batchId = $"batch_{i}";
    published[batchId] = clock.ElapsedTicks;
    await bus.Publish(new BatchCompleted("ws_bench", $"req_{i}", DateTimeOffset.UtcNow, batchId, "m", 1, 0, receiverUrl));
}

var publishedIn = (clock.ElapsedTicks - start) / (double)Stopwatch.Frequency;
// Waits on the receiver alone: polling the store meanwhile (a count scans every delivery) would slow what is measured.
await done.Task.WaitAsync(TimeSpan.FromMinutes(5));
var cpu = Environment.CpuUsage.TotalTime - cpuAtStart;
var stored = await service.Services.GetRequiredService<DeliveryStore>().Collection.CountAsync(d => d.EventType == "batch.completed", CancellationToken.None);
Console.WriteLine($"published in {publishedIn:0.00} s; {stored} deliveries stored, warm-up included");
var seconds = (lastReceipt - start) / (double)Stopwatch.Frequency;
var sorted = latencies.OrderBy(x => x).ToArray();
Console.WriteLine($"delivered {sorted.Length} in {seconds:0.00} s: {sorted.Length / seconds:0} deliveries/s, {duplicates} duplicates");
// CPU per delivery barely depends on what else the machine runs; deliveries/s does (a shared machine).
Console.WriteLine($"cpu: {cpu.TotalMilliseconds / sorted.Length:0.000} ms per delivery (process CPU time over the run; {Environment.ProcessorCount} cores at that cost: {Environment.ProcessorCount * 1000 / (cpu.TotalMilliseconds / sorted.Length):0} deliveries/s); load average {LoadAverage()}");
Console.WriteLine($"event -> delivery latency: p50 {sorted[sorted.Length / 2]:0.0} ms, p99 {sorted[(int)(sorted.Length * 0.99)]:0.0} ms, max {sorted[^1]:0.0} ms");
await receiver.StopAsync();

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
