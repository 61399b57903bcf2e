using System.CommandLine;
using System.Text;
using System.Text.Json;
using LLMTune.Engine.TinyModel;
using LLMTune.Host.Commands;
using LLMTune.Testing;

namespace LLMTune.IntegrationTests;

/// <summary><c>llmtune fine-tune</c> against a running server, through its public API.</summary>
public sealed class FineTuneCliTests
{
    [Fact]
    public async Task Create_uploads_trains_and_prints_the_deployed_model_and_a_failed_job_exits_1_with_its_reason()
    {
        var model = BundledModel.Find();
        Assert.SkipWhen(model is null, "models/llmtune-tiny.gguf has not been built.");
        await using var host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Finetune:BaseModels:llmtune/tiny:Path"] = model,
            ["Inference:Models:llmtune/tiny:Path"] = model,
            ["Finetune:Training:Threads"] = "2",
            ["Finetune:Worker:PollInterval"] = "00:00:00.200",
        });
        var dataset = WriteDataset(Enumerable.Range(0, 12).Select(i =>
            JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Ping {i}?" }, new { role = "assistant", content = "pong" } } })));

        var (exit, output, error) = await RunAsync("fine-tune", "create", "--base-model", "llmtune/tiny", "--file", dataset,
            "--epochs", "1", "--batch-size", "4", "--url", host.Address.ToString(), "--api-key", host.InitialKey);
        Assert.True(exit == 0, output + error);
        Assert.Matches(@"uploaded .*\.jsonl as file_\w+", output);
        Assert.Matches(@"job_\w+ completed: completed epoch 1/1 loss \d", output);
        Assert.Matches(@"model ft:llmtune/tiny:ws_\w+:job_\w+", output);
        Assert.DoesNotContain(host.InitialKey, output + error);

        // A broken line 3: the job fails validation, and the CLI says why and exits 1.
        var broken = WriteDataset(["{\"prompt\":\"a\",\"completion\":\"b\"}", "{\"prompt\":\"c\",\"completion\":\"d\"}", "{not json"]);
        (exit, output, error) = await RunAsync("fine-tune", "create", "--base-model", "llmtune/tiny", "--file", broken,
            "--url", host.Address.ToString(), "--api-key", host.InitialKey);
        Assert.Equal(1, exit);
        Assert.Contains("failed", output);
        Assert.Contains("validation_failed", error);
        Assert.Contains("line 3", error);
    }

    [Fact]
    public async Task Bad_arguments_and_api_errors_are_reported_without_a_stack_trace()
    {
        var dataset = WriteDataset(["{\"prompt\":\"a\",\"completion\":\"b\"}"]);
        var (exit, _, error) = await RunAsync("fine-tune", "create", "--base-model", "llmtune/tiny", "--url", "http://127.0.0.1:9", "--api-key", "sk_live_x");
        Assert.Equal(2, exit);
        Assert.Contains("either --file", error);

        (exit, _, error) = await RunAsync("fine-tune", "create", "--base-model", "llmtune/tiny", "--file", dataset, "--url", "not a url", "--api-key", "sk_live_x");
        Assert.Equal(2, exit);
        Assert.Contains("--url must be an http(s) address", error);

        await using var host = await TestHost.StartAsync();
        (exit, _, error) = await RunAsync("fine-tune", "create", "--base-model", "no/such-model", "--file", dataset, "--url", host.Address.ToString(), "--api-key", host.InitialKey);
        Assert.Equal(1, exit);
        Assert.Contains("404", error);
        Assert.Contains("no/such-model", error);
        Assert.DoesNotContain("   at ", error);

        (exit, _, error) = await RunAsync("fine-tune", "watch", "job_unknown", "--url", host.Address.ToString(), "--api-key", "sk_live_wrong");
        Assert.Equal(1, exit);
        Assert.Contains("401", error);
    }

    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var root = new RootCommand { FineTuneCommands.Create() };
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    private static string WriteDataset(IEnumerable<string> lines)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("llmtune-cli-").FullName, "data.jsonl");
        File.WriteAllText(path, string.Join('\n', lines) + "\n", Encoding.UTF8);
        return path;
    }
}
