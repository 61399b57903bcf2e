// Batch vs sequential on the real host, one run per model (the same process, the same machine load):
//   sequential — N prompts one after another through POST /v1/models/{id}/inference (one client);
//   batch      — the same N as one POST /v1/batch/inference, polled until it is final;
//   latency    — p50 of synchronous requests while a second batch runs, vs the idle p50 of the sequential run.
// First a random memory-bound model (768 × 6 layers, 44 M parameters; every request decodes to maxTokens), where
// continuous batching pays as it does on real LLMs; then the bundled llmtune/tiny, which sits in cache.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Testing;

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

    // Warm-up: JIT, the model's first decode, one small batch through the bus.
    for (var i = 0; i < 2; i++)
    {
        await InferAsync(client, modelId, Prompt(i));
    }

    await RunBatchAsync(client, modelId, 2, Prompt);

    var idle = new List<double>();
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
    {
        idle.Add(await InferAsync(client, modelId, Prompt(i)));
    }

    var sequential = clock.Elapsed.TotalSeconds;
    var batch = (await RunBatchAsync(client, modelId, count, Prompt)).TotalSeconds;

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

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

int IntArg(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
}
