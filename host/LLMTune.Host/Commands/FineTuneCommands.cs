using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Spectre.Console;

namespace LLMTune.Host.Commands;

/// <summary>
/// <c>llmtune fine-tune …</c>: a client of the public API (any LLMTune server, not only this process) that uploads a
/// dataset, starts a job and follows it with a progress bar until the fine-tuned model is ready.
/// </summary>
public static class FineTuneCommands
{
    private static readonly string[] Finished = ["completed", "failed", "cancelled"];

    public static Command Create() => new("fine-tune", "Start and follow fine-tuning jobs on an LLMTune server (through its public API).")
    {
        CreateJob(),
        Watch(),
    };

    private static Command CreateJob()
    {
        var baseModel = new Option<string>("--base-model") { Description = "Model to fine-tune, e.g. llmtune/tiny.", Required = true };
        var file = new Option<FileInfo?>("--file") { Description = "A local JSONL dataset to upload (chat \"messages\" or prompt/completion lines)." };
        var dataset = new Option<string?>("--dataset") { Description = "A dataset the server reads itself instead: file_…, https://…, s3://… or gs://…." };
        var epochs = new Option<int?>("--epochs") { Description = "hyperparameters.epochs (chosen by the server when omitted)." };
        var learningRate = new Option<double?>("--learning-rate") { Description = "hyperparameters.learningRate." };
        var batchSize = new Option<int?>("--batch-size") { Description = "hyperparameters.batchSize." };
        var adapter = new Option<string?>("--adapter") { Description = "lora (default) or full." };
        var noWatch = new Option<bool>("--no-watch") { Description = "Print the job id and return instead of following it." };
        var (url, apiKey) = ConnectionOptions();
        var command = new Command("create", "Upload a dataset (or name one), start a fine-tune and follow it until its model is deployed.")
        {
            baseModel, file, dataset, epochs, learningRate, batchSize, adapter, noWatch, url, apiKey,
        };
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if ((parse.GetValue(file) is null) == (parse.GetValue(dataset) is null))
            {
                await error.WriteLineAsync("Give either --file (a local JSONL to upload) or --dataset (a reference the server reads).");
                return 2;
            }

            using var client = Connect(parse, url, apiKey, error);
            if (client is null)
            {
                return 2;
            }

            var reference = parse.GetValue(dataset);
            if (parse.GetValue(file) is { } local)
            {
                if (!local.Exists)
                {
                    await error.WriteLineAsync($"No file at {local.FullName}.");
                    return 2;
                }

                using var form = new MultipartFormDataContent();
                form.Add(new StringContent("fine-tune"), "purpose");
                await using var stream = local.OpenRead();
                form.Add(new StreamContent(stream), "file", local.Name);
                var uploaded = await SendAsync(client, c => c.PostAsync("/v1/files", form, ct), error);
                if (uploaded is null)
                {
                    return 1;
                }

                reference = uploaded.Value.GetProperty("id").GetString();
                await output.WriteLineAsync($"uploaded {local.Name} as {reference}");
            }

            var body = new
            {
                baseModel = parse.GetValue(baseModel),
                dataset = reference,
                trainingMethod = "sft",
                hyperparameters = new
                {
                    learningRate = parse.GetValue(learningRate),
                    epochs = parse.GetValue(epochs),
                    batchSize = parse.GetValue(batchSize),
                    adapter = parse.GetValue(adapter),
                },
            };
            var job = await SendAsync(client, c => c.PostAsJsonAsync("/v1/fine-tune", body, ct), error);
            if (job is null)
            {
                return 1;
            }

            var jobId = job.Value.GetProperty("id").GetString()!;
            await output.WriteLineAsync($"created {jobId}");
            return parse.GetValue(noWatch) ? 0 : await FollowAsync(client, jobId, output, error, ct);
        });
        return command;
    }

    private static Command Watch()
    {
        var job = new Argument<string>("job") { Description = "The job id (job_…)." };
        var (url, apiKey) = ConnectionOptions();
        var command = new Command("watch", "Follow a job with a progress bar until it finishes (exit code 0 when it completed).") { job, url, apiKey };
        command.SetAction(async (parse, ct) =>
        {
            using var client = Connect(parse, url, apiKey, parse.InvocationConfiguration.Error);
            return client is null
                ? 2
                : await FollowAsync(client, parse.GetValue(job)!, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct);
        });
        return command;
    }

    private static (Option<string> Url, Option<string?> ApiKey) ConnectionOptions() =>
    (
        new Option<string>("--url")
        {
            Description = "The server (environment LLMTUNE_URL).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("LLMTUNE_URL") ?? "http://localhost:8080",
        },
        new Option<string?>("--api-key")
        {
            Description = "An API key (environment LLMTUNE_API_KEY; else ./data/initial-api-key when it exists). Prefer the environment: arguments show in process lists.",
        }
    );

    private static HttpClient? Connect(ParseResult parse, Option<string> url, Option<string?> apiKey, TextWriter error)
    {
        if (!Uri.TryCreate(parse.GetValue(url), UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            error.WriteLine($"--url must be an http(s) address (was '{parse.GetValue(url)}').");
            return null;
        }

        var key = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("LLMTUNE_API_KEY");
        if (string.IsNullOrWhiteSpace(key) && File.Exists(Path.Combine("data", "initial-api-key")))
        {
            key = File.ReadAllText(Path.Combine("data", "initial-api-key")).Trim();
        }

        if (string.IsNullOrWhiteSpace(key))
        {
            error.WriteLine("No API key: set LLMTUNE_API_KEY (or pass --api-key).");
            return null;
        }

        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.Trim());
        return client;
    }

    /// <summary>Sends a request; a failure prints the API's error message (never the key) and gives null.</summary>
    private static async Task<JsonElement?> SendAsync(HttpClient client, Func<HttpClient, Task<HttpResponseMessage>> send, TextWriter error)
    {
        HttpResponseMessage response;
        try
        {
            response = await send(client);
        }
        catch (HttpRequestException e)
        {
            await error.WriteLineAsync($"Cannot reach {client.BaseAddress}: {e.Message}");
            return null;
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            JsonElement? body = null;
            try
            {
                body = JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
            }

            if (response.IsSuccessStatusCode && body is not null)
            {
                return body;
            }

            var message = body is { } b && b.TryGetProperty("error", out var e) && e.TryGetProperty("message", out var m) ? m.GetString() : text;
            await error.WriteLineAsync($"{(int)response.StatusCode} {response.ReasonPhrase}: {message}");
            return null;
        }
    }

    /// <summary>Polls the job into a progress bar until it finishes, then waits for its deployed model.</summary>
    private static async Task<int> FollowAsync(HttpClient client, string jobId, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        JsonElement? job = null;
        try
        {
            await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async context =>
                {
                    var bar = context.AddTask(jobId, maxValue: 100);
                    while (true)
                    {
                        job = await SendAsync(client, c => c.GetAsync($"/v1/fine-tune/{jobId}", ct), error);
                        if (job is not { } current)
                        {
                            return;
                        }

                        bar.Value = current.GetProperty("progress").GetDouble();
                        bar.Description = Describe(current);
                        if (Finished.Contains(current.GetProperty("status").GetString()))
                        {
                            return;
                        }

                        await Task.Delay(TimeSpan.FromSeconds(1), ct);
                    }
                });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await output.WriteLineAsync($"stopped watching; {jobId} goes on (llmtune fine-tune watch {jobId})");
            return 130;
        }

        if (job is not { } last)
        {
            return 1;
        }

        var status = last.GetProperty("status").GetString();
        await output.WriteLineAsync($"{jobId} {status}: {Describe(last)}");
        if (status != "completed")
        {
            if (last.TryGetProperty("error", out var failure))
            {
                await error.WriteLineAsync($"{failure.GetProperty("code").GetString()}: {failure.GetProperty("message").GetString()}");
            }

            return 1;
        }

        // The model is deployed by the inference service just after the job completes.
        for (var attempt = 0; attempt < 60 && !last.TryGetProperty("fineTunedModel", out _); attempt++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            last = await SendAsync(client, c => c.GetAsync($"/v1/fine-tune/{jobId}", ct), error) ?? last;
        }

        if (!last.TryGetProperty("fineTunedModel", out var model))
        {
            await error.WriteLineAsync("The job completed but its model was not deployed within a minute; see GET /v1/fine-tune/" + jobId + "/events.");
            return 1;
        }

        await output.WriteLineAsync($"model {model.GetString()}");
        return 0;
    }

    private static string Describe(JsonElement job)
    {
        var metrics = job.GetProperty("metrics");
        var epochs = job.GetProperty("epochs");
        var text = $"{job.GetProperty("status").GetString()} epoch {epochs.GetProperty("current").GetInt32()}/{epochs.GetProperty("total").GetInt32()}";
        text += Metric(metrics, "loss", "loss {0:0.000}") + Metric(metrics, "evalLoss", " eval {0:0.000}") + Metric(metrics, "tokensPerSecond", " {0:0} tok/s");
        return text;
    }

    private static string Metric(JsonElement metrics, string name, string format) =>
        metrics.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
            ? " " + string.Format(CultureInfo.InvariantCulture, format, value.GetDouble()).TrimStart()
            : "";
}
