using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace LLMTune.Bench.Gateway;

/// <summary>One measured run: requests per second and latency percentiles in milliseconds.</summary>
public sealed record LoadResult(long Requests, double Seconds, double Rps, double P50, double P99);

/// <summary>
/// Closed-loop load on one URL at a fixed concurrency: wrk when it is installed (Debian's <c>wrk</c>: a C load tool that
/// costs the machine little), else a .NET HttpClient loop (heavier on the CPU it shares with the server, so its figures
/// are only comparable with each other).
/// </summary>
public abstract class LoadGenerator
{
    public abstract string Name { get; }

    public static LoadGenerator Choose(string tool) => tool switch
    {
        "wrk" => new Wrk(),
        "dotnet" => new DotnetLoop(),
        _ => Wrk.Installed() ? new Wrk() : new DotnetLoop(),
    };

    /// <summary>POSTs <paramref name="body"/> to <paramref name="url"/> for <paramref name="duration"/>; any non-2xx answer fails the run.</summary>
    public abstract Task<LoadResult> RunAsync(Uri url, string body, string? bearer, int concurrency, TimeSpan duration);

    private sealed class Wrk : LoadGenerator
    {
        public override string Name => "wrk";

        public static bool Installed() =>
            (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, "wrk")));

        public override async Task<LoadResult> RunAsync(Uri url, string body, string? bearer, int concurrency, TimeSpan duration)
        {
            var script = Path.Combine(Path.GetTempPath(), $"llmtune-bench-{Guid.NewGuid():N}.lua");
            var lua = new StringBuilder()
                .AppendLine("wrk.method = \"POST\"")
                .AppendLine(CultureInfo.InvariantCulture, $"wrk.body = [==[{body}]==]")
                .AppendLine("wrk.headers[\"Content-Type\"] = \"application/json\"");
            if (bearer is not null)
            {
                lua.AppendLine(CultureInfo.InvariantCulture, $"wrk.headers[\"Authorization\"] = \"Bearer {bearer}\"");
            }

            // One machine-readable line: requests, duration (µs), non-2xx, socket errors, p50 and p99 (µs).
            lua.AppendLine("""
                done = function(summary, latency, requests)
                  local e = summary.errors
                  io.write(string.format("RESULT %d %d %d %d %.1f %.1f\n", summary.requests, summary.duration, e.status,
                    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
                end
                """);
            await File.WriteAllTextAsync(script, lua.ToString());
            try
            {
                // One wrk thread per core at most: more would only take CPU from the server under test.
                var threads = Math.Max(1, Math.Min(concurrency, Math.Min(2, Environment.ProcessorCount)));
                var info = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in new[]
                {
                    "-t", threads.ToString(CultureInfo.InvariantCulture), "-c", concurrency.ToString(CultureInfo.InvariantCulture),
                    "-d", $"{Math.Max(1, (int)Math.Round(duration.TotalSeconds))}s", "--timeout", "5s", "-s", script, url.ToString(),
                })
                {
                    info.ArgumentList.Add(arg);
                }

                using var wrk = Process.Start(info)!;
                var output = await wrk.StandardOutput.ReadToEndAsync();
                var errors = await wrk.StandardError.ReadToEndAsync();
                await wrk.WaitForExitAsync();
                var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
                    ?? throw new InvalidOperationException($"wrk printed no result:\n{output}\n{errors}");
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                if (f[2] > 0 || f[3] > 0)
                {
                    throw new InvalidOperationException($"{url}: {f[2]} non-2xx answers and {f[3]} socket errors in {f[0]} requests");
                }

                var seconds = f[1] / 1e6;
                return new LoadResult((long)f[0], seconds, f[0] / seconds, f[4] / 1000, f[5] / 1000);
            }
            finally
            {
                File.Delete(script);
            }
        }
    }

    private sealed class DotnetLoop : LoadGenerator
    {
        public override string Name => "dotnet HttpClient loop";

        public override async Task<LoadResult> RunAsync(Uri url, string body, string? bearer, int concurrency, TimeSpan duration)
        {
            using var client = new HttpClient();
            if (bearer is not null)
            {
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            var payload = Encoding.UTF8.GetBytes(body);
            var latencies = new List<double>[concurrency];
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async i =>
            {
                var mine = latencies[i] = new List<double>(10_000);
                while (clock.Elapsed < duration)
                {
                    var start = Stopwatch.GetTimestamp();
                    using var content = new ByteArrayContent(payload) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
                    using var response = await client.PostAsync(url, content);
                    var answer = await response.Content.ReadAsByteArrayAsync();
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"{url}: {(int)response.StatusCode} {Encoding.UTF8.GetString(answer)}");
                    }

                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }));
            var seconds = clock.Elapsed.TotalSeconds;
            var all = latencies.SelectMany(l => l).Order().ToArray();
            return new LoadResult(all.Length, seconds, all.Length / seconds, Percentile(all, 0.50), Percentile(all, 0.99));
        }

        private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];
    }
}
