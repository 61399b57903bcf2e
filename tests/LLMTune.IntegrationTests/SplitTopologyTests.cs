using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LLMTune.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StandardWebhooks;

namespace LLMTune.IntegrationTests;

/// <summary>
/// What compose runs, without Docker: <c>llmtune dev split</c> starts every service as its own process on its own
/// embedded store file over one real RabbitMQ; everything below goes through the gateway only.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed partial class SplitTopologyTests(SplitTopology split) : IClassFixture<SplitTopology>
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_seeds_inference_call_answers_through_the_gateway_and_the_billing_service_meters_it()
    {
        using var client = split.Client();
        var watch = Stopwatch.StartNew();
        // The seed's curl, on the bundled model.
        using var response = await client.PostAsJsonAsync("/v1/models/llmtune/tiny/inference", new { prompt = "Summarize LLMTune in one sentence.", temperature = 0.6, maxTokens = 200 });
        var answer = await response.Json();
        Assert.Equal("llmtune/tiny", answer.GetProperty("model").GetString());
        Assert.Equal(JsonValueKind.String, answer.GetProperty("text").ValueKind);
        Assert.True(answer.GetProperty("tokens").GetInt32() > 0);
        Assert.True(answer.GetProperty("latency").GetInt32() >= 0);
        var requestId = response.Headers.GetValues("x-request-id").Single();
        Assert.StartsWith("req_", requestId, StringComparison.Ordinal);

        // InferenceCompleted travels from the inference process to the billing process, which answers /v1/usage.
        await Eventually.True(async () => (await (await client.GetAsync("/v1/usage?groupBy=model")).Json()).GetProperty("data").EnumerateArray()
            .Any(row => row.GetProperty("model").GetString() == "llmtune/tiny" && row.GetProperty("requests").GetInt64() >= 1), Bound, "the billing service to meter the request");
        split.Report($"inference through the gateway and metered by billing in {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task A_batch_with_a_webhook_url_completes_and_its_signed_batch_completed_arrives_once()
    {
        using var client = split.Client();
        var watch = Stopwatch.StartNew();
        var secret = (await (await client.GetAsync("/v1/webhooks/secret")).Json()).GetProperty("secret").GetString()!;
        var accepted = await (await client.PostAsJsonAsync("/v1/batch/inference", new
        {
            modelId = "llmtune/tiny",
            requests = new[] { new { id = "req-1", prompt = "First prompt", maxTokens = 8 }, new { id = "req-2", prompt = "Second prompt", maxTokens = 8 } },
            webhookUrl = split.ReceiverUrl("/batch-callback"),
        })).Json(HttpStatusCode.Accepted);
        var batchId = accepted.GetProperty("batchId").GetString()!;
        Assert.Equal("queued", accepted.GetProperty("status").GetString());
        Assert.Equal(2, accepted.GetProperty("summary").GetProperty("accepted").GetInt32());

        var done = await Eventually.Get<JsonElement?>(async () => await (await client.GetAsync($"/v1/batch/{batchId}")).Json(),
            b => b?.GetProperty("status").GetString() is "completed" or "completed_with_errors" or "failed", Bound, "the batch to finish");
        Assert.Equal("completed", done!.Value.GetProperty("status").GetString());
        Assert.Equal(2, done.Value.GetProperty("counts").GetProperty("succeeded").GetInt32());

        // The webhooks process delivered it: succeeded on the first attempt, one request at the receiver, verified by a third-party library.
        var delivery = await Eventually.Get<JsonElement?>(
            async () => (await (await client.GetAsync("/v1/webhooks/deliveries?event=batch.completed")).Json()).GetProperty("data").EnumerateArray()
                .Select(d => (JsonElement?)d).FirstOrDefault(d => d!.Value.GetProperty("url").GetString() == split.ReceiverUrl("/batch-callback")),
            d => d?.GetProperty("status").GetString() is "succeeded" or "failed", Bound, "the batch.completed delivery");
        Assert.Equal("succeeded", delivery!.Value.GetProperty("status").GetString());
        Assert.Equal(1, delivery.Value.GetProperty("attemptCount").GetInt32());
        var received = Assert.Single(split.Received, r => r.Path == "/batch-callback");
        new StandardWebhook(secret).Verify(received.Body, received.Headers);
        using var body = JsonDocument.Parse(received.Body);
        Assert.Equal("batch.completed", body.RootElement.GetProperty("event").GetString());
        Assert.Equal(batchId, body.RootElement.GetProperty("data").GetProperty("batchId").GetString());
        Assert.Equal(delivery.Value.GetProperty("webhookId").GetString(), received.Headers["webhook-id"].ToString());
        split.Report($"batch {batchId} completed and its webhook arrived, signed, once, in {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task A_fine_tune_completes_its_model_is_deployed_on_the_inference_service_and_answers()
    {
        using var client = split.Client();
        var watch = Stopwatch.StartNew();
        var lines = string.Join('\n', Enumerable.Range(0, 8).Select(i =>
            JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Ping {i}?" }, new { role = "assistant", content = "pong" } } })));
        using var form = new MultipartFormDataContent
        {
            { new StringContent("fine-tune"), "purpose" },
            { new StringContent(lines), "file", "split.jsonl" },
        };
        var file = (await (await client.PostAsync("/v1/files", form)).Json()).GetProperty("id").GetString()!;
        var job = await (await client.PostAsJsonAsync("/v1/fine-tune", new
        {
            baseModel = "llmtune/tiny",
            dataset = file,
            trainingMethod = "sft",
            hyperparameters = new { learningRate = 0.005, epochs = 1, batchSize = 4 },
        })).Json(HttpStatusCode.Created);
        var jobId = job.GetProperty("id").GetString()!;

        var finished = await Eventually.Get<JsonElement?>(async () => await (await client.GetAsync($"/v1/fine-tune/{jobId}")).Json(),
            j => j?.GetProperty("status").GetString() is "failed" or "cancelled" || j?.TryGetProperty("fineTunedModel", out _) == true,
            Bound, "the fine-tune to finish and its model to be deployed");
        Assert.Equal("completed", finished!.Value.GetProperty("status").GetString());
        // fineTunedModel is recorded from ModelDeployed: the inference process loaded the artifact and announced it.
        var model = finished.Value.GetProperty("fineTunedModel").GetString()!;

        await Eventually.True(async () => (await (await client.GetAsync("/v1/models")).Json()).GetProperty("data").EnumerateArray()
            .Any(m => m.GetProperty("id").GetString() == model), Bound, "the fine-tuned model to be deployed");
        using var response = await client.PostAsJsonAsync($"/v1/models/{model}/inference", new { prompt = "Ping 1?", maxTokens = 4 });
        Assert.Equal(model, (await response.Json()).GetProperty("model").GetString());
        split.Report($"fine-tune {jobId} trained, deployed as {model} and answered in {watch.ElapsedMilliseconds} ms");
    }

    /// <summary>
    /// Each process keeps only its own data: the gateway its workspaces, plans and admission counters, billing the
    /// balances and usage. A top-up (forwarded to billing), a balance charged down to zero (billing, from the inference
    /// process's InferenceCompleted) and a plan change (the gateway) reach the other side by event.
    /// </summary>
    [Fact]
    public async Task Top_ups_a_used_up_balance_and_plan_changes_take_effect_across_the_gateway_and_billing_processes()
    {
        using var admin = split.Operator();
        var watch = Stopwatch.StartNew();
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = $"split-growth-{Guid.NewGuid():N}"[..24], plan = "growth" }))
            .Json(HttpStatusCode.Created);
        var workspaceId = created.GetProperty("workspace").GetProperty("id").GetString()!;
        using var client = split.Client(created.GetProperty("apiKey").GetProperty("key").GetString()!);

        // Growth is prepaid and a new account has nothing: the gateway refuses before forwarding.
        await (await client.GetAsync("/v1/keys")).AssertError(HttpStatusCode.PaymentRequired, "insufficient_credits");
        await (await admin.PostAsJsonAsync("/admin/workspaces/ws_not_there/credits", new { amountUsd = 1, reference = "x" }))
            .AssertError(HttpStatusCode.NotFound, "workspace_not_found");

        // The top-up is billing's (the gateway checks the operator and forwards); its AccountStatusChanged reaches the gateway.
        var topUp = await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd = 0.002m, reference = "split-invoice-1" })).Json();
        Assert.True(topUp.GetProperty("applied").GetBoolean());
        Assert.Equal(0.002m, topUp.GetProperty("balanceUsd").GetDecimal());
        await Eventually.True(async () => (await client.GetAsync("/v1/keys")).StatusCode == HttpStatusCode.OK, Bound, "the top-up to reach the gateway");
        var afterTopUp = watch.ElapsedMilliseconds;

        // Billing knows the plan from the gateway's WorkspacePlanChanged, and the month's count from the forwarded request.
        var billing = await Eventually.Get<JsonElement?>(async () => await (await client.GetAsync("/v1/billing")).Json(),
            b => b?.GetProperty("plan").GetString() == "growth", Bound, "billing to hear of the workspace's plan");
        Assert.Equal(0.002m, billing!.Value.GetProperty("balanceUsd").GetDecimal());
        Assert.True(billing.Value.GetProperty("requests").GetProperty("used").GetInt64() >= 1, billing.Value.ToString());

        // Two inference requests at $0.001: billing meters them and the balance reaching zero turns the gateway to 402.
        for (var i = 0; i < 2; i++)
        {
            using var answered = await client.PostAsJsonAsync("/v1/models/llmtune/tiny/inference", new { prompt = $"Count to {i + 2}.", maxTokens = 4 });
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        }

        await Eventually.True(async () => (await client.GetAsync("/v1/keys")).StatusCode == HttpStatusCode.PaymentRequired, Bound,
            "the used-up balance to reach the gateway");
        var usage = (await (await client.GetAsync("/v1/usage?groupBy=model")).Json()).GetProperty("total");
        Assert.Equal(2, usage.GetProperty("requests").GetInt64());
        Assert.Equal(0.002m, usage.GetProperty("costUsd").GetDecimal());
        Assert.Equal(0m, (await (await client.GetAsync("/v1/billing")).Json()).GetProperty("balanceUsd").GetDecimal());
        var afterZero = watch.ElapsedMilliseconds;

        // The plan is the gateway's: Scale is invoiced, so the same zero balance is admitted at once; billing hears of it.
        (await admin.PutAsJsonAsync($"/admin/workspaces/{workspaceId}/plan", new { plan = "scale" })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/keys")).StatusCode);
        await Eventually.True(async () => (await (await client.GetAsync("/v1/billing")).Json()).GetProperty("plan").GetString() == "scale", Bound,
            "billing to hear of the plan change");
        split.Report($"402 -> top-up -> 200 at {afterTopUp} ms, balance used up -> 402 at {afterZero} ms, plan change seen by billing at {watch.ElapsedMilliseconds} ms");
    }
}

/// <summary>One customer receiver request.</summary>
public sealed record ReceivedWebhook(string Path, string Body, IHeaderDictionary Headers);

/// <summary>
/// One split topology for the test class: a webhook receiver on loopback, then <c>llmtune dev split</c> (six
/// processes) on the broker from <c>RABBITMQ_URL</c>, stopped with SIGTERM as a terminal's Ctrl+C would.
/// </summary>
public sealed partial class SplitTopology : IAsyncLifetime
{
    private readonly RabbitMqBroker broker = new();
    private readonly StringBuilder output = new();
    private readonly ConcurrentQueue<ReceivedWebhook> received = new();
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string dir = Directory.CreateTempSubdirectory("llmtune-split-").FullName;
    private WebApplication? receiver;
    private Process? process;
    private Uri receiverAddress = null!;

    public Uri Gateway { get; private set; } = null!;
    public string ApiKey { get; private set; } = "";
    public IReadOnlyList<ReceivedWebhook> Received => received.ToList();

    public string ReceiverUrl(string path) => new Uri(receiverAddress, path).AbsoluteUri;

    /// <summary>A client for the gateway with the workspace key (or another); skips the test where no RabbitMQ is available.</summary>
    public HttpClient Client(string? key = null)
    {
        Assert.SkipWhen(broker.Url is null, broker.Unavailable ?? "");
        var client = new HttpClient { BaseAddress = Gateway, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key ?? ApiKey);
        return client;
    }

    /// <summary>A client for the gateway's <c>/admin</c> with the operator token <c>llmtune dev split</c> generated.</summary>
    public HttpClient Operator() => Client(File.ReadAllText(Path.Combine(dir, "operator-token")).Trim());

    public void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    public async ValueTask InitializeAsync()
    {
        await broker.InitializeAsync();
        if (broker.Url is not { } url)
        {
            return; // every test skips with the broker's reason
        }

        await StartReceiverAsync();

        var watch = Stopwatch.StartNew();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "llmtune.dll"), "dev", "split", "--port", "0", "--dir", dir, "--rabbitmq", url,
            // Extra settings go to every service: a local receiver is allowed (public https only by default), and short polls.
            "--Outbound:AllowedHosts:0=127.0.0.1", "--Webhooks:Delivery:PollInterval=00:00:00.200", "--Webhooks:Delivery:Jitter=0",
            "--Batch:PollInterval=00:00:00.200", "--Finetune:Worker:PollInterval=00:00:00.200", "--Finetune:Training:Threads=2",
        })
        {
            info.ArgumentList.Add(arg);
        }

        process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => started.TrySetException(new InvalidOperationException($"llmtune dev split exited early:\n{Output}\n{Logs()}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await started.Task.WaitAsync(TimeSpan.FromMinutes(4));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"llmtune dev split did not report its services within 4 minutes:\n{Output}\n{Logs()}", e);
        }

        TestContext.Current.SendDiagnosticMessage($"split topology (6 processes) ready in {watch.Elapsed.TotalSeconds:F1} s");
    }

    public async ValueTask DisposeAsync()
    {
        if (process is not null)
        {
            if (!process.HasExited)
            {
                using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
                {
                    await term.WaitForExitAsync();
                }

                try
                {
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
                }
                catch (TimeoutException)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }

            process.Dispose();
        }

        if (receiver is not null)
        {
            await receiver.DisposeAsync();
        }

        await broker.DisposeAsync();
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a process on its way out: the temp folder is cleaned by the system.
        }
    }

    private string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    private string Logs() => string.Join('\n', Directory.Exists(Path.Combine(dir, "logs"))
        ? Directory.GetFiles(Path.Combine(dir, "logs")).Select(f => $"--- {Path.GetFileName(f)}\n{string.Join('\n', File.ReadLines(f).TakeLast(15))}")
        : []);

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }

        if (GatewayLine().Match(line) is { Success: true } gateway)
        {
            Gateway = new Uri(gateway.Groups[1].Value);
        }
        else if (KeyLine().Match(line) is { Success: true } key)
        {
            ApiKey = key.Groups[1].Value;
        }
        else if (line.StartsWith("Ctrl+C stops everything", StringComparison.Ordinal) && Gateway is not null && ApiKey.Length > 0)
        {
            started.TrySetResult();
        }
    }

    private async Task StartReceiverAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration["urls"] = "http://127.0.0.1:0";
        builder.Logging.ClearProviders();
        receiver = builder.Build();
        receiver.MapPost("/{**path}", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var headers = new HeaderDictionary();
            foreach (var (name, value) in http.Request.Headers)
            {
                headers[name] = value;
            }

            received.Enqueue(new ReceivedWebhook(http.Request.Path, await reader.ReadToEndAsync(), headers));
            return Results.Ok();
        });
        await receiver.StartAsync();
        receiverAddress = new Uri(receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    [GeneratedRegex(@"^\s*gateway\s+(http://\S+)")]
    private static partial Regex GatewayLine();

    [GeneratedRegex(@"^\s*api key\s+(sk_\S+)")]
    private static partial Regex KeyLine();
}
