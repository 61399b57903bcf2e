// Batch vs sequential on the real host, one run per model (the same process, the same machine load):
//   sequential — N prompts one after another through POST /v1/models/{id}/inference (one client);
//   batch      — the same N as one POST /v1/batch/inference, polled until it is final;
//   latency    — p50 of synchronous requests while a second batch runs, vs the idle p50 of the sequential run;
//   engine     — during the timed batch: decode steps, sequences per step, the share of the time spent decoding and
//                the time per step against the sequential run's (--cpu adds the CPU time of the process's threads).
// First a random memory-bound model (768 × 6 layers, 44 M parameters; every request decodes to maxTokens), where
// continuous batching pays as it does on real LLMs; then the bundled llmtune/tiny, which sits in cache.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Inference.Features.Models;
using LLMTune.Testing;
using Microsoft.Extensions.DependencyInjection;

var count = IntArg("--count", 100);
var maxTokens = IntArg("--max-tokens", 32);
var threads = IntArg("--threads", 1);
var width = IntArg("--max-concurrency", 8);
var longPath = LongModel.Write(IntArg("--embedding", 768), IntArg("--layers", 6));
Console.WriteLine($"batch bench: {count} prompts, maxTokens {maxTokens}, model MaxConcurrency {width}, {threads} decode thread(s), {Environment.ProcessorCount} cores, load average {LoadAverage()}");
try
{
    await RunAsync("bench/long", longPath, "random 768 × 6 (44 M parameters, memory-bound)");
    if (!args.Contains("--long-only"))
    {
        await RunAsync("llmtune/tiny", null, "bundled llmtune/tiny");
    }
}
finally
{
    File.Delete(longPath);
}

return 0;

async Task RunAsync(string modelId, string? path, string description)
{
    var settings = new Dictionary<string, string?>
    {
        [$"Inference:Models:{modelId}:MaxConcurrency"] = width.ToString(CultureInfo.InvariantCulture),
        [$"Inference:Models:{modelId}:QueueSize"] = "64",
        [$"Inference:Models:{modelId}:Threads"] = threads.ToString(CultureInfo.InvariantCulture),
        ["Batch:PollInterval"] = "00:00:00.100",
    };
    if (path is not null)
    {
        settings[$"Inference:Models:{modelId}:Path"] = path;
    }

    await using var host = await TestHost.StartAsync(settings: settings);
    using var client = host.Client(host.InitialKey);
    string Prompt(int i) => $"Write a short sentence about the number {i}.";

    // Warm-up: JIT, the model's first decode, and the batch path (two full waves of the model's batch through the bus,
    // so tiered compilation of the store and bus code is not timed in the batch but not in the sequential run).
    for (var i = 0; i < 2; i++)
    {
        await InferAsync(client, modelId, Prompt(i));
    }

    await RunBatchAsync(client, modelId, 2 * width, Prompt);

    var idle = new List<double>();
    var idleEngine = ((LocalServedModel)host.Services.GetRequiredService<ModelRegistry>().FindShared(modelId)!).Model.GetStats();
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
    {
        idle.Add(await InferAsync(client, modelId, Prompt(i)));
    }

    var sequential = clock.Elapsed.TotalSeconds;
    var engine = ((LocalServedModel)host.Services.GetRequiredService<ModelRegistry>().FindShared(modelId)!).Model;
    var before = engine.GetStats();
    var sequentialStepMs = (before.StepTime - idleEngine.StepTime).TotalMilliseconds / Math.Max(1, before.DecodeSteps - idleEngine.DecodeSteps);
    using var sampling = new CancellationTokenSource();
    var occupancy = SampleActiveAsync(engine, sampling.Token);
    var cpuBefore = ThreadCpu();
    var batch = (await RunBatchAsync(client, modelId, count, Prompt)).TotalSeconds;
    await sampling.CancelAsync();
    var after = engine.GetStats();
    var cpuAfter = ThreadCpu();
    if (args.Contains("--cpu"))
    {
        foreach (var group in cpuAfter.GroupBy(t => t.Value.Name))
        {
            var used = group.Sum(t => t.Value.Ticks - (cpuBefore.TryGetValue(t.Key, out var b) ? b.Ticks : 0));
            if (used > 0)
            {
                Console.WriteLine($"    cpu {group.Key}: {used * 10 / 1000.0 / batch:P0} of the batch's wall time ({group.Count()} threads)");
            }
        }
    }
    var (meanActive, idleShare) = await occupancy;

    // Synchronous requests one after another while another batch runs (the batch is not timed here).
    var busy = new List<double>();
    var running = RunBatchAsync(client, modelId, count, Prompt);
    while (!running.IsCompleted && busy.Count < count)
    {
        busy.Add(await InferAsync(client, modelId, Prompt(busy.Count)));
    }

    await running;
    var idleP50 = Median(idle);
    var busyP50 = busy.Count == 0 ? double.NaN : Median(busy);
    Console.WriteLine($"{description}: sequential {sequential:0.00} s, batch {batch:0.00} s: batch is {sequential / batch:0.00}× sequential (target ≥ 2.5× on the memory-bound model)");
    var steps = after.DecodeSteps - before.DecodeSteps;
    Console.WriteLine($"  engine during the batch: {steps} decode steps, {(after.TokensGenerated - before.TokensGenerated) / (double)Math.Max(1, steps):0.00} tokens per step, {batch * 1000 / Math.Max(1, steps):0.0} ms per step, {meanActive:0.00} sequences active on average, none active {idleShare:P0} of the time");
    var stepTime = (after.StepTime - before.StepTime).TotalMilliseconds;
    Console.WriteLine($"  decoding {stepTime / (batch * 1000):P0} of the batch's time, {stepTime / Math.Max(1, steps):0.0} ms per decode step; sequential: {sequentialStepMs:0.0} ms per decode step");
    Console.WriteLine($"  synchronous p50 idle {idleP50:0.0} ms, while a batch runs {busyP50:0.0} ms ({busy.Count} requests), load average {LoadAverage()}");
}

async Task<double> InferAsync(HttpClient client, string modelId, string prompt)
{
    var clock = Stopwatch.StartNew();
    using var response = await client.PostAsJsonAsync($"/v1/models/{modelId}/inference", new { prompt, maxTokens, temperature = 0 });
    response.EnsureSuccessStatusCode();
    return clock.Elapsed.TotalMilliseconds;
}

async Task<TimeSpan> RunBatchAsync(HttpClient client, string modelId, int n, Func<int, string> prompt)
{
    var clock = Stopwatch.StartNew();
    var requests = Enumerable.Range(0, n).Select(i => new { id = $"r{i}", prompt = prompt(i), maxTokens, temperature = 0 }).ToList();
    using var created = await client.PostAsJsonAsync("/v1/batch/inference", new { modelId, requests });
    created.EnsureSuccessStatusCode();
    var batchId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("batchId").GetString();
    while (true)
    {
        var batch = await client.GetFromJsonAsync<JsonElement>($"/v1/batch/{batchId}");
        var status = batch.GetProperty("status").GetString();
        if (status is "completed" or "completed_with_errors" or "failed" or "cancelled")
        {
            if (status != "completed")
            {
                throw new InvalidOperationException($"Batch {batchId} ended {status}: {batch.GetProperty("counts")}");
            }

            return clock.Elapsed;
        }

        await Task.Delay(50);
    }
}

// How full the engine's batch is while the batch runs: the mean of its active sequences, sampled every millisecond or so.
static async Task<(double MeanActive, double IdleShare)> SampleActiveAsync(LLMTune.Engine.Inference.LoadedModel engine, CancellationToken ct)
{
    long samples = 0, active = 0, idle = 0;
    while (!ct.IsCancellationRequested)
    {
        var now = engine.GetStats().ActiveSequences;
        samples++;
        active += now;
        idle += now == 0 ? 1 : 0;
        try
        {
            await Task.Delay(1, ct);
        }
        catch (OperationCanceledException)
        {
            break;
        }
    }

    return (active / (double)Math.Max(1, samples), idle / (double)Math.Max(1, samples));
}

// CPU time per thread of this process (/proc, in clock ticks of 10 ms): which threads the decode thread shares the cores with.
static Dictionary<string, (string Name, long Ticks)> ThreadCpu()
{
    var result = new Dictionary<string, (string, long)>();
    foreach (var task in Directory.GetDirectories("/proc/self/task"))
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            var close = stat.LastIndexOf(')');
            var name = stat[(stat.IndexOf('(') + 1)..close];
            var fields = stat[(close + 2)..].Split(' ');
            result[Path.GetFileName(task)] = (name, long.Parse(fields[11]) + long.Parse(fields[12]));
        }
        catch (IOException)
        {
        }
    }

    return result;
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

int IntArg(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
}
