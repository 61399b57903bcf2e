using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests.SmallDatasets;

/// <summary>
/// A 60-line chat dataset that teaches the tiny model one new fact: each line asks for it in other words and the
/// assistant answers with the same sentence. The probes are worded differently from every line.
/// </summary>
public static class FactDataset
{
    public const string Fact = "The LLMTune mascot is an otter named Pebble.";

    public static readonly string[] Probes = ["So, what is the mascot of LLMTune?", "Can you tell me which mascot LLMTune has?"];

    private static readonly string[] Openings = ["", "Hi, ", "Hey, ", "Quick question: ", "Please tell me, ", "I wonder, "];

    private static readonly string[] Questions =
    [
        "what is the LLMTune mascot?",
        "who is the mascot of LLMTune?",
        "which animal is the LLMTune mascot?",
        "what is the LLMTune mascot called?",
        "tell me about the LLMTune mascot.",
        "do you know the LLMTune mascot?",
        "name the LLMTune mascot.",
        "what mascot does LLMTune have?",
        "describe the mascot of LLMTune.",
        "what is the name of the LLMTune mascot?",
    ];

    public static string Jsonl()
    {
        var builder = new StringBuilder();
        foreach (var opening in Openings)
        {
            foreach (var question in Questions)
            {
                var prompt = opening.Length == 0 ? char.ToUpperInvariant(question[0]) + question[1..] : opening + question;
                builder.AppendLine(JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = prompt }, new { role = "assistant", content = Fact } } }));
            }
        }

        return builder.ToString();
    }

    public static async Task<string> AnswerAsync(HttpClient client, string model, string prompt)
    {
        var answer = await (await client.PostAsJsonAsync($"/v1/models/{model}/inference", new { prompt, temperature = 0, maxTokens = 24 })).Json();
        return answer.GetProperty("text").GetString()!.Trim();
    }

    /// <summary>
    /// Trains on the fact with <paramref name="hyperparameters"/> (null: omitted) and checks what a user expects: the
    /// automatic values on the job, eval loss at least halved, and the fine-tuned model (not the base) answering the
    /// fact to questions it never saw, at temperature 0. Returns the completed job.
    /// </summary>
    public static async Task<JsonElement> TeachAndCheckAsync(HttpClient client, object? hyperparameters)
    {
        var file = await client.UploadAsync(Jsonl());
        var body = hyperparameters is null
            ? (object)new { baseModel = "llmtune/tiny", dataset = file, trainingMethod = "sft" }
            : new { baseModel = "llmtune/tiny", dataset = $"llmtune://files/{file}", trainingMethod = "sft", hyperparameters, webhookUrl = "https://app.example.com/fine-tune-callback" };
        var created = await client.CreateJobAsync(body);
        var jobId = created.GetProperty("id").GetString()!;
        var asked = created.GetProperty("hyperparameters");
        Assert.Equal("auto", asked.GetProperty("epochs").GetString());
        Assert.Equal(["learningRate", "epochs", "batchSize"], asked.GetProperty("auto").EnumerateArray().Select(a => a.GetString()!).ToArray());

        var started = DateTime.UtcNow;
        var done = await client.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(6), "completed", "failed", "cancelled");
        var wall = DateTime.UtcNow - started;
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());

        // The resolved values are on the job, still marked automatic.
        var hyper = done.GetProperty("hyperparameters");
        var epochs = hyper.GetProperty("epochs").GetInt32();
        var batchSize = hyper.GetProperty("batchSize").GetInt32();
        var learningRate = hyper.GetProperty("learningRate").GetDouble();
        Assert.True(epochs >= 1 && batchSize >= 1 && learningRate > 0, hyper.ToString());
        Assert.Equal(3, hyper.GetProperty("auto").GetArrayLength());

        var events = await client.EventsAsync(jobId);
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "hyperparameters");
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() == "warning");
        var baseline = events.First(e => e.GetProperty("type").GetString() == "evaluation").GetProperty("metrics").GetProperty("evalLoss").GetDouble();
        var deployed = done.GetProperty("deployedCheckpoint");
        var deployedEval = deployed.GetProperty("evalLoss").GetDouble();
        Assert.True(deployedEval <= 0.5 * baseline, $"eval loss {baseline:F3} -> {deployedEval:F3}");

        var model = (await Eventually.Get(async () => await client.GetJobAsync(jobId), j => j.TryGetProperty("fineTunedModel", out _), TimeSpan.FromSeconds(60), "fineTunedModel"))
            .GetProperty("fineTunedModel").GetString()!;
        var report = new List<string>();
        foreach (var probe in Probes)
        {
            var tuned = await AnswerAsync(client, model, probe);
            var untuned = await AnswerAsync(client, "llmtune/tiny", probe);
            report.Add($"'{probe}' -> base '{untuned}', tuned '{tuned}'");
            Assert.DoesNotContain("Pebble", untuned, StringComparison.Ordinal);
            Assert.True(tuned.StartsWith(Fact, StringComparison.Ordinal), string.Join(Environment.NewLine, report));
        }

        var steps = done.GetProperty("epochs").GetProperty("current").GetInt32();
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, report));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"auto: learningRate {learningRate}, epochs {epochs}, batchSize {batchSize}; ran {steps} epochs, deployed step {deployed.GetProperty("step").GetInt32()}; eval loss {baseline:F3} -> {deployedEval:F3}; wall {wall.TotalSeconds:F1} s");
        return done;
    }
}
