// Generation throughput of the engine's continuous batching: aggregate tokens/s and time to first token with
// 1, 4 and 8 concurrent sequences on one model (levels interleaved over rounds, medians reported). Each of the N clients issues requests back to back, so N
// sequences stay live for the whole measurement even when a sequence stops early at an end token.
using System.Diagnostics;
using System.Globalization;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Inference;

var options = BenchOptions.Parse(args);
var modelPath = options.ModelPath ?? (!options.Random && File.Exists(BenchOptions.TinyModelPath) ? BenchOptions.TinyModelPath : null);
string? temporary = null;
if (modelPath is null)
{
    temporary = Path.Combine(Path.GetTempPath(), $"llmtune-bench-{Guid.NewGuid():N}.gguf");
    var builder = LlamaGgufBuilder.WriteRandom(temporary, new RandomLlamaOptions
    {
        EmbeddingLength = options.RandomEmbedding,
        BlockCount = options.RandomLayers,
        // Full multi-head attention like the bundled tiny model; at this size ggml's broadcast (GQA) attention
        // path costs about as much as the weights, which would hide the effect being measured.
        HeadCount = 4,
        HeadCountKv = 4,
        FeedForwardLength = options.RandomEmbedding * 11 / 4,
        ContextLength = 1024,
        InitStd = 0.3f,
        Seed = 1,
        Name = "bench-random",
    });
    modelPath = temporary;
    Console.WriteLine($"model: random llama, {builder.Weights.Hyperparameters.ParameterCount() / 1e6:F2} M parameters (E={options.RandomEmbedding}, {options.RandomLayers} layers, 4 heads, FFN {options.RandomEmbedding * 11 / 4}, vocab {builder.Weights.Hyperparameters.VocabSize})");
}
else
{
    Console.WriteLine($"model: {modelPath}");
}

try
{
    await using var manager = new ModelManager();
    var maxConcurrency = options.Concurrency.Max();
    var model = await manager.LoadAsync("bench", new ModelLoadOptions
    {
        Path = modelPath,
        ContextLength = Math.Min(1024, options.TokensPerRequest + 64),
        MaxConcurrentSequences = maxConcurrency,
        QueueCapacity = maxConcurrency,
        Threads = options.Threads,
        UnifiedKvCache = options.UnifiedKv,
    });
    var summary = model.Summary;
    Console.WriteLine($"loaded: {summary.Architecture}, {summary.ParameterCount / 1e6:F2} M parameters, vocab {summary.VocabularySize}, {options.Threads} threads, {(options.UnifiedKv ? "unified KV" : "KV stream per sequence")}, {options.TokensPerRequest} tokens per request, {options.Rounds} rounds of {options.Seconds:F0} s per level");

    // Warm-up: first decodes allocate compute buffers.
    await model.CompleteAsync(new GenerationRequest { Prompt = "warm up", MaxTokens = 16, Temperature = 0 });

    // Levels are interleaved over several rounds and the median kept, so drifting load from other processes on
    // the machine does not favour whichever level happened to run in a quiet moment.
    var samples = options.Concurrency.ToDictionary(c => c, _ => new List<LevelResult>());
    for (var round = 1; round <= options.Rounds; round++)
    {
        Console.WriteLine($"round {round}/{options.Rounds}");
        foreach (var concurrency in options.Concurrency)
        {
            samples[concurrency].Add(await MeasureAsync(model, concurrency, options));
        }
    }

    var results = options.Concurrency.Select(c => Median(samples[c])).ToList();

    Console.WriteLine();
    // Tokens per CPU-second is printed too: on a shared machine wall-clock rates swing with other load.
    Console.WriteLine("concurrency | aggregate tok/s | per-sequence tok/s | tok/CPU-s | TTFT mean (ms) | TTFT p95 (ms) | requests");
    foreach (var r in results)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{r.Concurrency,11} | {r.TokensPerSecond,15:F1} | {r.TokensPerSecond / r.Concurrency,18:F1} | {r.TokensPerCpuSecond,9:F1} | {r.TtftMeanMs,14:F1} | {r.TtftP95Ms,13:F1} | {r.Requests,8}"));
    }

    var one = results.FirstOrDefault(r => r.Concurrency == 1);
    var eight = results.FirstOrDefault(r => r.Concurrency == 8);
    if (one is not null && eight is not null)
    {
        var ratio = eight.TokensPerSecond / one.TokensPerSecond;
        var cpuRatio = eight.TokensPerCpuSecond / one.TokensPerCpuSecond;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"8-vs-1 aggregate throughput: {ratio:F2}x (target >= 2.5x) {(ratio >= 2.5 ? "PASS" : "BELOW TARGET")}; per CPU-second: {cpuRatio:F2}x"));
    }
}
finally
{
    if (temporary is not null)
    {
        File.Delete(temporary);
    }
}

static LevelResult Median(List<LevelResult> samples)
{
    var sorted = samples.OrderBy(s => s.TokensPerSecond).ToList();
    var middle = sorted[sorted.Count / 2];
    return middle with
    {
        TokensPerCpuSecond = samples.Select(s => s.TokensPerCpuSecond).Order().ElementAt(samples.Count / 2),
        TtftMeanMs = samples.Select(s => s.TtftMeanMs).Order().ElementAt(samples.Count / 2),
        TtftP95Ms = samples.Select(s => s.TtftP95Ms).Order().ElementAt(samples.Count / 2),
        Requests = samples.Sum(s => s.Requests),
    };
}

static async Task<LevelResult> MeasureAsync(LoadedModel model, int concurrency, BenchOptions options)
{
    var ttfts = new List<double>();
    long tokens = 0;
    var requests = 0;
    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
    var clock = Stopwatch.StartNew();
    var deadline = TimeSpan.FromSeconds(options.Seconds);

    async Task Client(int client)
    {
        for (var round = 0; clock.Elapsed < deadline; round++)
        {
            var result = await model.CompleteAsync(new GenerationRequest
            {
                Prompt = $"{client}.{round}: once upon a time",
                MaxTokens = options.TokensPerRequest,
                Temperature = 0.8f,
                // Every request generates exactly --tokens tokens, so the levels compare like with like.
                IgnoreEndOfGeneration = true,
                Seed = (uint)(client * 1000 + round),
            });
            lock (ttfts)
            {
                ttfts.Add(result.TimeToFirstToken.TotalMilliseconds);
                tokens += result.CompletionTokens;
                requests++;
            }
        }
    }

    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(Client));
    var elapsed = clock.Elapsed.TotalSeconds;
    var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
    ttfts.Sort();
    var result = new LevelResult(concurrency, tokens / elapsed, tokens / cpu, ttfts.Average(), ttfts[(int)Math.Min(ttfts.Count - 1, Math.Ceiling(ttfts.Count * 0.95) - 1)], requests);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {concurrency} concurrent: {tokens} tokens in {elapsed:F1} s ({cpu:F1} CPU s) = {tokens / elapsed:F1} tok/s"));
    return result;
}

internal sealed record LevelResult(int Concurrency, double TokensPerSecond, double TokensPerCpuSecond, double TtftMeanMs, double TtftP95Ms, int Requests);

internal sealed record BenchOptions(string? ModelPath, int[] Concurrency, int TokensPerRequest, double Seconds, int Threads, int Rounds, bool UnifiedKv = false, bool Random = false,
    int RandomEmbedding = 256, int RandomLayers = 4)
{
    public const string TinyModelPath = "models/llmtune-tiny.gguf";

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions(null, [1, 4, 8], 128, 4, Math.Max(1, Environment.ProcessorCount / 2), 3);
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--model" => options with { ModelPath = Next() },
                "--concurrency" => options with { Concurrency = Next().Split(',').Select(int.Parse).ToArray() },
                "--tokens" => options with { TokensPerRequest = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--seconds" => options with { Seconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--threads" => options with { Threads = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--unified-kv" => options with { UnifiedKv = true },
                "--random" => options with { Random = true },
                "--random-embedding" => options with { Random = true, RandomEmbedding = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--random-layers" => options with { Random = true, RandomLayers = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--rounds" => options with { Rounds = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--help" or "-h" => throw new ArgumentException(
                    "usage: [--model path.gguf] [--concurrency 1,4,8] [--tokens 128] [--seconds 4] [--rounds 3] [--threads N] [--unified-kv] [--random] [--random-embedding 256] [--random-layers 4]"),
                _ => throw new ArgumentException($"Unknown argument {args[i]}."),
            };
        }

        return options;
    }
}
