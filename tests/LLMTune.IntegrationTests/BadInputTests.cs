using System.Diagnostics;
using System.Text.Json;
using LLMTune.Testing;
using LLMTune.Testing.BadInput;

namespace LLMTune.IntegrationTests;

/// <summary>
/// Every operation the OpenAPI document lists gets generated bad input (wrong types, nulls, huge and broken strings,
/// operator objects, deep nesting, out-of-range numbers, broken bodies and parameters, wrong credentials): each answer
/// is a 2xx or a 4xx in the error shape, never a 5xx. New endpoints are covered as soon as they are documented.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private const string OperatorToken = "operator-token-for-bad-input-tests";
    private const int Seed = 20261202;
    private const int MaxBodyBytes = 1024 * 1024;
    private TestHost host = null!;

    public async ValueTask InitializeAsync() => host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Admin:OperatorToken"] = OperatorToken,
        // Small enough that an oversized body is cheap to send; plausible inference requests stay short.
        ["Http:MaxRequestBodyBytes"] = MaxBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Inference:DefaultMaxTokens"] = "2",
        ["Inference:Models:llmtune/tiny:Threads"] = "1",
    });

    public ValueTask DisposeAsync() => host.DisposeAsync();

    [Fact]
    public async Task Every_documented_operation_answers_bad_input_with_a_4xx_in_the_error_shape()
    {
        using var anonymous = host.Client();
        var document = JsonDocument.Parse(await anonymous.GetStringAsync("/openapi/v1.json")).RootElement.Clone();
        var openApi = new OpenApiOperations(document);
        var operations = openApi.All();
        Assert.Contains(operations, o => o.ToString() == "POST /v1/completions");
        Assert.Contains(operations, o => o.ToString() == "PUT /admin/workspaces/{id}/plan");

        var generator = new BadRequestGenerator(openApi, Seed, await HintsAsync(), oversizedBodyBytes: MaxBodyBytes + 16 * 1024);
        using var runner = new BadRequestRunner(host.Address, host.InitialKey, OperatorToken);
        var failures = new List<string>();
        var plausible = new Dictionary<string, int>();
        var sent = 0;
        foreach (var operation in operations)
        {
            var cases = generator.CasesFor(operation);
            var outcomes = new BadRequestRunner.Outcome[cases.Count];
            var started = Stopwatch.GetTimestamp();
            // A few at a time: as many as a model decodes at once, so none waits in (or overflows) its queue.
            await Parallel.ForAsync(0, cases.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 },
                async (i, _) => outcomes[i] = await runner.SendAsync(cases[i]));
            var elapsed = Stopwatch.GetElapsedTime(started);

            sent += cases.Count;
            for (var i = 0; i < cases.Count; i++)
            {
                if (outcomes[i].Problem is { } problem)
                {
                    failures.Add($"{cases[i]} → {problem}");
                }

                if (cases[i] is { Description: BadRequestGenerator.PlausibleBody, Credentials: Credentials.Valid })
                {
                    plausible[operation.ToString()] = outcomes[i].Status;
                }
            }

            var statuses = outcomes.GroupBy(o => o.Status).OrderBy(g => g.Key).Select(g => $"{g.Count()}×{g.Key}");
            TestContext.Current.TestOutputHelper?.WriteLine($"{operation}: {string.Join(", ", statuses)} in {elapsed.TotalSeconds:0.0} s");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{sent} requests over {operations.Count} operations, {failures.Count} answered wrongly");
        // The plausible bodies pass, so each mutation above reached the checks behind the one field it broke.
        foreach (var operation in new[] { "POST /v1/keys", "POST /admin/workspaces", "POST /v1/files", "POST /v1/playground/inference", "POST /v1/chat/completions", "POST /v1/completions" })
        {
            Assert.True(plausible[operation] is >= 200 and < 300, $"The plausible request for {operation} got {plausible[operation]}.");
        }

        Assert.True(failures.Count == 0,
            $"{failures.Count} of {sent} bad requests were answered with a 5xx or outside the error shape:\n{string.Join('\n', failures.Take(80))}");
    }

    /// <summary>Real values where a made-up one would stop every request at the first check (an unknown model).</summary>
    private async Task<Dictionary<string, RawJson>> HintsAsync()
    {
        using var client = host.Client(host.InitialKey);
        var models = JsonDocument.Parse(await client.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        var hints = new Dictionary<string, RawJson>
        {
            ["prompt"] = RawJson.String("Hello"),
            ["role"] = RawJson.String("user"),
            ["content"] = RawJson.String("Hello"),
            ["plan"] = RawJson.String("growth"),
            ["maxTokens"] = RawJson.Text("2"),
            ["max_tokens"] = RawJson.Text("2"),
            ["max_completion_tokens"] = RawJson.Text("2"),
            ["top_logprobs"] = RawJson.Text("null"), // needs logprobs: true
            ["logit_bias"] = RawJson.Text("null"),
            ["input"] = RawJson.String("Hello"),
            ["encoding_format"] = RawJson.String("float"),
            ["encodingFormat"] = RawJson.String("float"),
            ["dimensions"] = RawJson.Text("null"), // local models take only their own width
            ["metadata"] = RawJson.Text("{\"k\":\"v\"}"),
            // A fine-tune request that passes every check up to the (missing) dataset file, so no job is started.
            ["dataset"] = RawJson.String("file_doesnotexist"),
            ["trainingMethod"] = RawJson.String("sft"),
            ["learningRate"] = RawJson.Text("0.001"),
            ["adapter"] = RawJson.String("lora"),
            ["webhookUrl"] = RawJson.Text("null"),
            // Chat's structured-output and tool parameters are optional; the plausible chat request leaves them out.
            ["response_format"] = RawJson.Text("null"),
            ["tools"] = RawJson.Text("null"),
            ["tool_choice"] = RawJson.Text("null"),
            ["tool_calls"] = RawJson.Text("null"),
            ["tool_call_id"] = RawJson.Text("null"),
            ["purpose"] = RawJson.String("fine-tune"),
            ["file"] = RawJson.Text(JsonSerializer.Serialize("""{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}""" + "\n")),
        };
        if (models.GetArrayLength() > 0)
        {
            var model = models[0].GetProperty("id").GetString()!;
            hints["model"] = RawJson.String(model);
            hints["modelId"] = RawJson.String(model);
            hints["baseModel"] = RawJson.String(model);
            hints["path"] = RawJson.String(model + "/inference"); // the native route's catch-all
        }

        return hints;
    }
}
