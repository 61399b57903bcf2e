// Tokens/s of the same greedy generations run three ways on the bundled model (llmtune/tiny):
//   engine  — LoadedModel.Generate in this process, no HTTP;
//   json    — POST /v1/models/llmtune/tiny/inference on the real host (Kestrel on loopback, key auth);
//   stream  — the same with "stream": true, read as server-sent events.
// Each runs with 1 client and with 8 concurrent clients; time to first token is measured per request.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Testing;

var requests = IntArg("--requests", 16);
var maxTokens = IntArg("--max-tokens", 64);
// Default 1: the host serves the bundled model on one thread, and both paths must decode alike to compare.
var threads = args.SkipWhile(a => a != "--threads").Skip(1).Select(int.Parse).Cast<int?>().FirstOrDefault() ?? 1;
var concurrencies = new[] { 1, 8 };
var longGenerations = args.Contains("--long");
// --embedding/--layers grow the --long model: the bundled shape (128, 4) is compute-bound at one sequence, while
// e.g. 768 × 6 (44 M parameters, 176 MB) is memory-bound like real LLMs, which is where batching pays.
var modelPath = longGenerations ? LongModel.Write(IntArg("--embedding", 128), IntArg("--layers", 4)) : Path.Combine(AppContext.BaseDirectory, "models", "llmtune-tiny.gguf");
if (longGenerations)
{
    // Every request runs to maxTokens: the ratio then measures the steady decode path, not per-request costs.
    maxTokens = IntArg("--max-tokens", 192);
    requests = IntArg("--requests", 4);
}

if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"The bundled model is missing at {modelPath}; build models/llmtune-tiny.gguf first.");
    return 1;
}

// The tiny model's longer answers (identity and LLMTune questions are whole sentences).
string[] prompts =
[
    "Who are you?", "What is LLMTune?", "How do I train a model with LLMTune?", "What should I call you?",
    "hello!", "What can LLMTune do?", "Which city is the capital of Hungary?", "What noise does a frog make?",
    "Make cloud uppercase.", "Add 15 and 6.", "Tell me about yourself.", "How do I deploy a model with LLMTune?",
    "hey!!", "What is the colour of a banana?", "Are you a person?", "How do I get an API key for LLMTune?",
];

Console.WriteLine($"{(longGenerations ? $"random model, embedding {IntArg("--embedding", 128)} × {IntArg("--layers", 4)} layers, no end-of-text (--long)" : "llmtune/tiny")}, greedy, maxTokens {maxTokens}, {requests} requests per client, median of {IntArg("--rounds", 3)} rounds, threads {threads}, {Environment.ProcessorCount} cores");
var rounds = IntArg("--rounds", 3);
var settings = new Dictionary<string, string?>
{
    ["Inference:Models:llmtune/tiny:Path"] = modelPath,
    ["Inference:Models:llmtune/tiny:MaxConcurrency"] = "8",
    ["Inference:Models:llmtune/tiny:QueueSize"] = "64",
};
settings["Inference:Models:llmtune/tiny:Threads"] = threads.ToString(CultureInfo.InvariantCulture);

// The engine alone and the host hold their own copy of the model; only the one being measured computes.
// Rounds interleave the three paths so a change in machine load hits all of them alike; each cell is the median round.
var rounds_ = new List<Result>();
await using (var manager = new ModelManager())
await using (var host = await TestHost.StartAsync(settings: settings))
{
    var model = await manager.LoadAsync("llmtune/tiny", new ModelLoadOptions { Path = modelPath, MaxConcurrentSequences = 8, QueueCapacity = 64, Threads = threads });
    var key = host.InitialKey;
    await RunEngine(model, 1, 2); // warm-up
    await RunHttp(host, key, "json", 1, 2);
    await RunHttp(host, key, "stream", 1, 2);
    for (var round = 0; round < rounds; round++)
    {
        foreach (var clients in concurrencies)
        {
            rounds_.Add(await RunEngine(model, clients, requests));
            rounds_.Add(await RunHttp(host, key, "json", clients, requests));
            rounds_.Add(await RunHttp(host, key, "stream", clients, requests));
        }
    }
}

var results = rounds_.GroupBy(r => (r.Path, r.Clients))
    .Select(g => g.OrderBy(r => r.TokensPerSecond).ElementAt(g.Count() / 2))
    .OrderBy(r => r.Path == "engine" ? 0 : r.Path == "json" ? 1 : 2).ThenBy(r => r.Clients)
    .ToList();

Console.WriteLine();
Console.WriteLine("TTFT: first streamed delta (engine: first token); for json the whole answer, which is when its first token arrives.");
Console.WriteLine($"{"path",-8} {"clients",7} {"requests",8} {"tokens",7} {"seconds",8} {"tokens/s",9} {"TTFT p50 ms",12} {"TTFT p95 ms",12}");
foreach (var r in results)
{
    Console.WriteLine($"{r.Path,-8} {r.Clients,7} {r.Requests,8} {r.Tokens,7} {r.Seconds,8:0.000} {r.TokensPerSecond,9:0.0} {r.TtftP50,12:0.0} {r.TtftP95,12:0.0}");
}

Console.WriteLine();
foreach (var clients in concurrencies)
{
    var engine = results.Single(r => r.Path == "engine" && r.Clients == clients);
    foreach (var path in new[] { "json", "stream" })
    {
        var http = results.Single(r => r.Path == path && r.Clients == clients);
        var ratio = http.TokensPerSecond / engine.TokensPerSecond;
        Console.WriteLine($"{path} / engine, {clients} client(s): {ratio:P1} of the engine's tokens/s (target ≥ 90%) {(ratio >= 0.9 ? "OK" : "BELOW TARGET")}");
    }
}

foreach (var clients in concurrencies)
{
    // Independent of machine load on the engine side: what the HTTP path adds around the generation itself.
    var overhead = rounds_.Where(r => r.Path == "json" && r.Clients == clients).SelectMany(r => r.Overhead).Order().ToArray();
    Console.WriteLine($"json, {clients} client(s): client time minus the host's reported latency, p50 {Result.Percentile(overhead, 0.5):0.0} ms, p95 {Result.Percentile(overhead, 0.95):0.0} ms");
}

foreach (var path in new[] { "engine", "json", "stream" })
{
    var scale = results.Single(r => r.Path == path && r.Clients == 8).TokensPerSecond / results.Single(r => r.Path == path && r.Clients == 1).TokensPerSecond;
    Console.WriteLine($"{path}: 8 clients give {scale:0.00}× one client's tokens/s (target ≥ 2×) {(scale >= 2 ? "OK" : "BELOW TARGET")}");
}

return 0;

async Task<Result> RunEngine(LoadedModel model, int clients, int perClient)
{
    var ttft = new List<double>();
    var tokens = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
    {
        for (var i = 0; i < perClient; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var prompt = prompts[(client * 5 + i) % prompts.Length];
            // As the native endpoint does: a user turn for chat models, raw text otherwise.
            var generation = model.Generate(new GenerationRequest
            {
                Messages = model.Summary.HasChatTemplate ? [ChatMessage.User(prompt)] : null,
                Prompt = model.Summary.HasChatTemplate ? null : prompt,
                MaxTokens = maxTokens,
                Temperature = 0,
            });
            double? first = null;
            await foreach (var _ in generation.ReadTokensAsync())
            {
                first ??= Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }

            var result = await generation.Completion;
            lock (ttft)
            {
                ttft.Add(first ?? 0);
                tokens += result.CompletionTokens;
            }
        }
    })));
    return Result.From("engine", clients, clients * perClient, tokens, clock.Elapsed, ttft);
}

async Task<Result> RunHttp(TestHost host, string key, string mode, int clients, int perClient)
{
    var ttft = new List<double>();
    var overhead = new List<double>();
    var tokens = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
    {
        using var http = host.Client(key);
        for (var i = 0; i < perClient; i++)
        {
            var body = new { prompt = prompts[(client * 5 + i) % prompts.Length], temperature = 0, maxTokens, stream = mode == "stream" };
            var started = Stopwatch.GetTimestamp();
            int generated;
            double first;
            if (mode == "json")
            {
                using var response = await http.PostAsJsonAsync("/v1/models/llmtune/tiny/inference", body);
                response.EnsureSuccessStatusCode();
                // Without streaming the first token reaches the client with the last.
                first = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
                generated = answer.GetProperty("tokens").GetInt32();
                // The host's own latency covers reading the body to the answer; the rest is HTTP, auth and middleware.
                lock (overhead)
                {
                    overhead.Add(first - answer.GetProperty("latency").GetInt64());
                }
            }
            else
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/llmtune/tiny/inference") { Content = JsonContent.Create(body) };
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                response.EnsureSuccessStatusCode();
                (first, generated) = await ReadStream(response, started);
            }

            lock (ttft)
            {
                ttft.Add(first);
                tokens += generated;
            }
        }
    })));
    return Result.From(mode, clients, clients * perClient, tokens, clock.Elapsed, ttft) with { Overhead = overhead };
}

static async Task<(double FirstMs, int Tokens)> ReadStream(HttpResponseMessage response, long started)
{
    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
    double? first = null;
    string? eventName = null;
    while (await reader.ReadLineAsync() is { } line)
    {
        if (line.StartsWith("event: ", StringComparison.Ordinal))
        {
            eventName = line[7..];
        }
        else if (line.StartsWith("data: ", StringComparison.Ordinal))
        {
            if (eventName == "delta")
            {
                first ??= Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            else if (eventName == "done")
            {
                var done = JsonDocument.Parse(line[6..]).RootElement;
                return (first ?? Stopwatch.GetElapsedTime(started).TotalMilliseconds, done.GetProperty("tokens").GetInt32());
            }
        }
    }

    throw new InvalidOperationException("The stream ended without a done event.");
}

// The bundled model's architecture with random weights whose end-of-text rows are zero, so greedy decoding never stops early.
int IntArg(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
}

internal sealed record Result(string Path, int Clients, int Requests, int Tokens, double Seconds, double TtftP50, double TtftP95)
{
    public double TokensPerSecond => Tokens / Seconds;

    public IReadOnlyList<double> Overhead { get; init; } = [];

    public static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    public static Result From(string path, int clients, int requests, int tokens, TimeSpan elapsed, List<double> ttft)
    {
        var sorted = ttft.Order().ToArray();
        return new Result(path, clients, requests, tokens, elapsed.TotalSeconds, Percentile(sorted, 0.5), Percentile(sorted, 0.95));
    }
}
