using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Training;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Testing;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

// Training tokens/s of LlamaTrainer called directly versus the same job through the fine-tune service (upload,
// POST /v1/fine-tune, worker, progress writes, checkpoints), and the time from POST /v1/fine-tune to the first
// training step. Both sides use the same model, data, LoRA settings, batch, epochs and threads.
// Usage: LLMTune.Bench.Finetune [--model path.gguf] [--epochs 4] [--threads 2] [--rounds 3]
var arguments = args.Select((a, i) => (a, i)).Where(x => x.a.StartsWith("--", StringComparison.Ordinal) && x.i + 1 < args.Length)
    .ToDictionary(x => x.a[2..], x => args[x.i + 1]);
var epochs = int.Parse(arguments.GetValueOrDefault("epochs", "4"), CultureInfo.InvariantCulture);
var threads = int.Parse(arguments.GetValueOrDefault("threads", "2"), CultureInfo.InvariantCulture);
var rounds = int.Parse(arguments.GetValueOrDefault("rounds", "3"), CultureInfo.InvariantCulture);
var modelPath = arguments.GetValueOrDefault("model") ?? BundledModel.Find()
    ?? throw new InvalidOperationException($"{BundledModel.RelativePath} not found; pass --model path.gguf or set {BundledModel.OverrideVariable} to an existing file");
const float learningRate = 0.01f;
const int batchSize = 8;
const int sequenceLength = 128;

var dataset = ParityDataset();
var work = Directory.CreateTempSubdirectory("llmtune-bench-finetune-").FullName;
Console.WriteLine($"model:   {modelPath}");
Console.WriteLine($"job:     LoRA r8, {epochs} epochs, batch {batchSize} x {sequenceLength}, lr {learningRate}, {threads} threads, {rounds} rounds ({Environment.ProcessorCount} cores)");

// The direct run tokenizes exactly as the service does (same tokenizer, template and held-out share).
using var tokenizer = new DatasetTokenizer();
var examples = tokenizer.Tokenize(modelPath, DatasetParser.Parse(new MemoryStream(Encoding.UTF8.GetBytes(dataset))), sequenceLength);
var (train, eval) = DatasetPreparer.Split(examples, 0.1, 1);

var direct = new List<(double TokensPerSecond, double Wall)>();
var service = new List<(double TokensPerSecond, double Wall, double FirstStep)>();
for (var round = 1; round <= rounds; round++)
{
    direct.Add(await RunDirectAsync());
    service.Add(await RunServiceAsync());
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"round {round}: direct {direct[^1].TokensPerSecond:F0} tokens/s ({direct[^1].Wall:F1} s); service {service[^1].TokensPerSecond:F0} tokens/s ({service[^1].Wall:F1} s training) = {100 * service[^1].TokensPerSecond / direct[^1].TokensPerSecond:F1}%, POST -> first step {service[^1].FirstStep * 1000:F0} ms"));
}

var directTps = Median(direct.Select(d => d.TokensPerSecond));
var serviceTps = Median(service.Select(s => s.TokensPerSecond));
Console.WriteLine();
// This machine's speed drifts by tens of percent over minutes; each round's two runs are back to back, so the
// ratio within a round is the steadier figure.
var roundRatio = Median(direct.Zip(service, (d, s) => s.TokensPerSecond / d.TokensPerSecond));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trainer tokens/s (median): direct {directTps:F0}, through the service {serviceTps:F0} -> {100 * serviceTps / directTps:F1}%"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"service / direct within a round (median of {rounds}): {100 * roundRatio:F1}% (target >= 90%)"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"training wall time (median): direct {Median(direct.Select(d => d.Wall)):F1} s, service {Median(service.Select(s => s.Wall)):F1} s"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"POST /v1/fine-tune -> first training step (median): {Median(service.Select(s => s.FirstStep)) * 1000:F0} ms"));
Directory.Delete(work, recursive: true);
return;

async Task<(double, double)> RunDirectAsync()
{
    var options = new TrainingOptions
    {
        BaseModelPath = modelPath,
        OutputPath = Path.Combine(work, $"direct-{Guid.NewGuid():N}.gguf"),
        Mode = TrainingMode.Lora,
        Lora = new LoraOptions { Rank = 8, Alpha = 16 },
        LearningRate = learningRate,
        Epochs = epochs,
        BatchSize = batchSize,
        SequenceLength = sequenceLength,
        Threads = threads,
        Seed = 1,
    };
    var clock = Stopwatch.StartNew();
    var result = await new LlamaTrainer().TrainAsync(options, train, eval);
    return (result.TokensPerSecond, clock.Elapsed.TotalSeconds);
}

async Task<(double, double, double)> RunServiceAsync()
{
    var data = Directory.CreateTempSubdirectory("llmtune-bench-host-").FullName;
    await using var host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Artifacts:LocalPath"] = Path.Combine(data, "artifacts"),
        ["Finetune:WorkPath"] = Path.Combine(data, "finetune-work"),
        ["Finetune:BaseModels:llmtune/tiny:Path"] = modelPath,
        ["Finetune:Training:Threads"] = threads.ToString(CultureInfo.InvariantCulture),
        ["Inference:Models:llmtune/tiny:Path"] = modelPath,
        ["Inference:Models:llmtune/tiny:Threads"] = "1",
    }, dataDirectory: data);
    using var client = host.Client(host.InitialKey);
    using var form = new MultipartFormDataContent
    {
        { new StringContent("fine-tune"), "purpose" },
        { new ByteArrayContent(Encoding.UTF8.GetBytes(dataset)), "file", "parity.jsonl" },
    };
    var file = JsonDocument.Parse(await (await client.PostAsync("/v1/files", form)).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();

    // Timed by the events the service publishes, seen in-process (the API's timestamps have whole seconds).
    var clock = new LifecycleClock();
    using var observing = host.Services.GetRequiredService<IBus>().ConnectPublishObserver(clock);
    var posted = Stopwatch.GetTimestamp();
    var created = await client.PostAsJsonAsync("/v1/fine-tune", new
    {
        baseModel = "llmtune/tiny",
        dataset = file,
        trainingMethod = "sft",
        hyperparameters = new { learningRate, epochs, batchSize },
    });
    var jobId = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    var job = await Eventually.Get<JsonElement?>(
        async () => JsonDocument.Parse(await client.GetStringAsync($"/v1/fine-tune/{jobId}")).RootElement.Clone(),
        j => j is { } x && x.GetProperty("status").GetString() is "completed" or "failed",
        TimeSpan.FromMinutes(10));
    if (job!.Value.GetProperty("status").GetString() != "completed")
    {
        throw new InvalidOperationException($"The job failed: {job}");
    }

    await Eventually.True(() => clock.Completed is not null, TimeSpan.FromSeconds(30), "TrainingCompleted");
    return (job.Value.GetProperty("metrics").GetProperty("tokensPerSecond").GetDouble(),
        Stopwatch.GetElapsedTime(clock.Started!.Value, clock.Completed!.Value).TotalSeconds,
        Stopwatch.GetElapsedTime(posted, clock.FirstStep!.Value).TotalSeconds);
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static string ParityDataset()
{
    string[] phrasings = ["Is {0} even or odd?", "Is the number {0} odd or even?", "Even or odd: {0}?"];
    var random = new Random(17);
    var builder = new StringBuilder();
    foreach (var (n, i) in Enumerable.Range(0, 1000).OrderBy(_ => random.Next()).Take(300).Select((n, i) => (n, i)))
    {
        var prompt = string.Format(CultureInfo.InvariantCulture, phrasings[i % phrasings.Length], n);
        builder.AppendLine(JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = prompt }, new { role = "assistant", content = n % 2 == 0 ? "even" : "odd" } } }));
    }

    return builder.ToString();
}

/// <summary>When the job's TrainingStarted, first TrainingProgressed (sent at the first step) and TrainingCompleted went out.</summary>
internal sealed class LifecycleClock : IPublishObserver
{
    public long? Started { get; private set; }
    public long? FirstStep { get; private set; }
    public long? Completed { get; private set; }

    public Task PrePublish<T>(PublishContext<T> context) where T : class
    {
        var now = Stopwatch.GetTimestamp();
        switch (context.Message)
        {
            case TrainingStarted:
                Started ??= now;
                break;
            case TrainingProgressed:
                FirstStep ??= now;
                break;
            case TrainingCompleted:
                Completed ??= now;
                break;
        }

        return Task.CompletedTask;
    }

    public Task PostPublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;

    public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;
}
