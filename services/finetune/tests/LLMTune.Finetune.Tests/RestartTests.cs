using System.Net.Http.Headers;
using System.Text.Json;
using LLMTune.Finetune.Tests.Support;

namespace LLMTune.Finetune.Tests;

/// <summary>The executable is killed (SIGKILL) mid-training; started again on the same data, the job still completes.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Killing_the_host_during_training_and_starting_it_again_still_completes_the_job_from_its_checkpoint()
    {
        var (events, _) = await InterruptAndRestart(graceful: false);
        Assert.Contains(events, e => e.GetProperty("message").GetString()!.Contains("attempt 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stopping_the_host_gracefully_requeues_the_job_and_the_next_start_completes_it()
    {
        var (events, exitCode) = await InterruptAndRestart(graceful: true);
        Assert.Equal(0, exitCode); // SIGTERM: the worker hands the job back and the process exits cleanly
        Assert.Contains(events, e => e.GetProperty("message").GetString()!.StartsWith("The service is stopping; the job is queued again", StringComparison.Ordinal));
    }

    /// <summary>Trains until a checkpoint exists, stops the executable (SIGTERM or SIGKILL), starts it again on the same data.</summary>
    private static async Task<(List<JsonElement> Events, int? ExitCode)> InterruptAndRestart(bool graceful)
    {
        var workDir = Directory.CreateTempSubdirectory("llmtune-finetune-restart-").FullName;
        var data = Path.Combine(workDir, "data");
        var args = FinetuneHost.Settings(data)
            .Where(kv => !kv.Key.StartsWith("Admin:", StringComparison.Ordinal))
            .Select(kv => $"--{kv.Key}={kv.Value}")
            .Append("--Serilog:MinimumLevel:Default=Warning")
            .ToArray();

        string jobId;
        int? exitCode = null;
        await using (var first = await HostProcess.StartAsync(workDir, args))
        {
            using var client = Client(first.Address, data);
            jobId = await client.StartLongJobAsync();

            // Wait until a checkpoint (every 5 steps here) is on disk, then stop the process mid-training.
            var checkpoints = Path.Combine(data, "finetune-work", "jobs", jobId, "checkpoints");
            await Eventually.True(() => Directory.Exists(checkpoints) && Directory.EnumerateFiles(checkpoints, "*.gguf").Any(), TimeSpan.FromMinutes(1), "a checkpoint");
            var before = await client.GetJobAsync(jobId);
            Assert.Equal("training", before.GetProperty("status").GetString());
            if (graceful)
            {
                exitCode = await first.StopAsync();
            }
            else
            {
                await first.KillAsync();
            }
        }

        await using var second = await HostProcess.StartAsync(workDir, args);
        using var again = Client(second.Address, data);
        var done = await again.WaitForStatusAsync(jobId, TimeSpan.FromMinutes(3), "completed", "failed", "cancelled");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString() + second.Output);

        var events = await again.EventsAsync(jobId);
        // The training's own completion entry (a later "Deployed as …" entry also carries status completed).
        var completion = events.Select(e => e.GetProperty("message").GetString()!).Last(m => m.StartsWith("Training completed", StringComparison.Ordinal));
        Assert.Matches("resumed from step [1-9]", completion);
        Assert.Equal(1, events.Count(e => e.GetProperty("type").GetString() == "status" && e.GetProperty("message").GetString() == "Training started."));
        return (events, exitCode);
    }

    private static HttpClient Client(Uri address, string data)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(data, "initial-api-key")).Trim());
        return client;
    }
}
