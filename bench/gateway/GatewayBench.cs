using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LLMTune.Testing;

namespace LLMTune.Bench.Gateway;

/// <summary>How long and how hard to measure.</summary>
/// <remarks>
/// A host's warm-up goes on, <see cref="WarmupSeconds"/> at a time, until its JIT has settled (fewer than
/// <see cref="JitSettledMethods"/> methods compiled in the last round) or <see cref="MaxWarmupSeconds"/> have passed:
/// tiered compilation recompiles hot code for tens of seconds after a start, on the same two cores the bench measures.
/// </remarks>
public sealed record BenchOptions(
    double Seconds = 5, double WarmupSeconds = 2, int StreamRounds = 200, string Tool = "auto", bool Split = true, double MaxWarmupSeconds = 60)
{
    public const int JitSettledMethods = 50;

    public static BenchOptions Smoke { get; } = new(Seconds: 1, WarmupSeconds: 1, StreamRounds: 5, Tool: "auto", MaxWarmupSeconds: 1);
}

/// <summary>
/// One path at one concurrency, with what the LLMTune process allocated per request (null for direct) and, in
/// <c>all</c> mode, how long metering (outbox, bus, billing's charge) took after the run to account for every request.
/// </summary>
public sealed record PathResult(
    string Path, int Concurrency, LoadResult Load, double? AllocatedBytesPerRequest, double? InferenceAllocatedBytesPerRequest,
    double? MeteringCatchUpSeconds = null, double WarmupSeconds = 0)
{
    /// <summary>Requests per second counted until the last one was charged: what the host sustains, metering included.</summary>
    public double? MeteredRps => MeteringCatchUpSeconds is { } catchUp ? Load.Requests / (Load.Seconds + catchUp) : null;
}

/// <summary>Stream first-chunk delay (client received minus the mock's send), in milliseconds.</summary>
public sealed record StreamResult(string Path, double P50, double P99);

public sealed record BenchReport(string Tool, string Machine, IReadOnlyList<PathResult> Paths, IReadOnlyList<StreamResult> Streams);

/// <summary>
/// The gateway bench: a mock OpenAI upstream, the real <c>llmtune</c> executable in <c>all</c> mode and in the split
/// topology (a gateway process forwarding through YARP to an inference process), each with an upstream model that
/// points at the mock; then the same chat completion driven directly at the mock and through LLMTune at concurrency 1
/// and 16. Default configuration everywhere except what a bench needs: the embedded store and in-memory bus in split
/// mode too (no MongoDB or RabbitMQ on a laptop) and plan limits high enough never to refuse (admission still does all
/// its work: plan, counter reservations, headers). Metering is on.
/// </summary>
public static partial class GatewayBench
{
    public const string ModelId = "bench/mock";
    private const string OperatorToken = "bench-operator-token-0123456789";
    private const string InternalSecret = "bench-internal-secret-0123456789";
    private const string Body = """{"model":"bench/mock","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}""";
    private const string StreamBody = """{"model":"bench/mock","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"stream":true}""";
    private static readonly int[] Concurrencies = [1, 16];

    public static async Task<BenchReport> RunAsync(BenchOptions options, TextWriter progress)
    {
        var load = LoadGenerator.Choose(options.Tool);
        await using var mock = await MockUpstream.StartAsync();
        var directUrl = new Uri(mock.Address, "v1/chat/completions");
        var results = new List<PathResult>();
        var streams = new List<StreamResult>();

        progress.WriteLine($"load tool: {load.Name}; mock upstream at {mock.Address}");
        foreach (var c in Concurrencies)
        {
            results.Add(new PathResult("direct", c, await MeasureAsync(load, directUrl, Body, null, c, options), null, null));
        }

        streams.Add(await StreamAsync("direct", mock, directUrl, null, options.StreamRounds));

        var root = Directory.CreateTempSubdirectory("llmtune-bench-").FullName;
        try
        {
            await using (var all = await HostProcess.StartAsync(Dir(root, "all"), HostArgs(mock, "all")))
            {
                var key = await CreateWorkspaceAsync(all.Address);
                var url = new Uri(all.Address, "v1/chat/completions");
                var metering = new MeteringProbe(all.Address, key);
                foreach (var c in Concurrencies)
                {
                    results.Add(await MeasureHostAsync("llmtune all", load, url, key, c, options, all.Address, null, metering));
                }

                streams.Add(await StreamAsync("llmtune all", mock, url, key, options.StreamRounds));
            }

            if (options.Split)
            {
                await using var inference = await HostProcess.StartAsync(Dir(root, "inference"), HostArgs(mock, "inference"));
                await using var gateway = await HostProcess.StartAsync(Dir(root, "gateway"),
                    [.. HostArgs(mock, "gateway"), $"--ReverseProxy:Clusters:inference:Destinations:inference-1:Address={inference.Address}"]);
                var key = await CreateWorkspaceAsync(gateway.Address);
                var url = new Uri(gateway.Address, "v1/chat/completions");
                foreach (var c in Concurrencies)
                {
                    results.Add(await MeasureHostAsync("llmtune split", load, url, key, c, options, gateway.Address, inference.Address));
                }

                streams.Add(await StreamAsync("llmtune split", mock, url, key, options.StreamRounds));
            }
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // a process still closing its files: the temp folder is cleaned up by the OS
            }
        }

        return new BenchReport(load.Name, Machine(), results, streams);
    }

    /// <summary>
    /// For profiling: the mock and an <c>all</c>-mode host with the bench's settings, kept running until the process is
    /// stopped (Ctrl+C or SIGTERM, which also stop the host); prints what wrk, dotnet-counters and dotnet-trace need.
    /// </summary>
    public static async Task HoldAsync(TextWriter output)
    {
        using var stopping = new CancellationTokenSource();
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true; // returns from the wait below, so the host process is disposed (stopped) on the way out
            stopping.Cancel();
        }

        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        await using var mock = await MockUpstream.StartAsync();
        var root = Directory.CreateTempSubdirectory("llmtune-bench-").FullName;
        await using var all = await HostProcess.StartAsync(Dir(root, "all"), HostArgs(mock, "all"));
        var key = await CreateWorkspaceAsync(all.Address);
        output.WriteLine($"mock {mock.Address}v1/chat/completions");
        output.WriteLine($"llmtune pid {all.Id} {all.Address}v1/chat/completions");
        output.WriteLine($"key {key}");
        output.WriteLine($"body {Body}");
        await Task.Delay(Timeout.Infinite, stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static string Dir(string root, string name) => Directory.CreateDirectory(Path.Combine(root, name)).FullName;

    /// <summary>Default configuration, plus the mock model, the operator token, and limits that never refuse.</summary>
    private static string[] HostArgs(MockUpstream mock, string target) =>
    [
        "--target", target,
        "--Storage:Provider=LiteDb",
        "--Bus:Transport=InMemory",
        $"--Internal:Secret={InternalSecret}",
        $"--Admin:OperatorToken={OperatorToken}",
        $"--Inference:Models:{ModelId}:Upstream:BaseUrl={mock.Address}v1",
        $"--Inference:Models:{ModelId}:Upstream:Model={MockUpstream.Model}",
        "--Inference:Models:llmtune/tiny:Enabled=false",
        "--Billing:Plans:Scale:RequestsPerMinute=1000000000",
        "--Billing:Plans:Scale:RequestsPerMinutePerKey=1000000000",
        "--Billing:Plans:Scale:TokensPerMinute=1000000000000",
        // Split mode here has no shared bus, so worst-case token reservations are never settled to actual use.
        "--Billing:Plans:Scale:TokensPerMinutePerKey=1000000000000",
    ];

    private static async Task<string> CreateWorkspaceAsync(Uri host)
    {
        using var http = new HttpClient { BaseAddress = host };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        using var response = await http.PostAsJsonAsync("/admin/workspaces", new { name = "bench", plan = "scale" });
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"creating the bench workspace: {(int)response.StatusCode} {text}");
        }

        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("apiKey").GetProperty("key").GetString()!;
    }

    private static async Task<LoadResult> MeasureAsync(LoadGenerator load, Uri url, string body, string? key, int c, BenchOptions options)
    {
        await load.RunAsync(url, body, key, c, TimeSpan.FromSeconds(options.WarmupSeconds)); // JIT, connections, caches, tiered compilation
        return await load.RunAsync(url, body, key, c, TimeSpan.FromSeconds(options.Seconds));
    }

    private static async Task<PathResult> MeasureHostAsync(
        string path, LoadGenerator load, Uri url, string key, int c, BenchOptions options, Uri gateway, Uri? inference, MeteringProbe? metering = null)
    {
        var warming = Stopwatch.StartNew();
        Uri[] hosts = inference is null ? [gateway] : [gateway, inference];
        var compiled = await JitCompiledMethodsAsync(hosts);
        while (true)
        {
            var warmUp = await load.RunAsync(url, Body, key, c, TimeSpan.FromSeconds(options.WarmupSeconds));
            metering?.Sent += warmUp.Requests;
            var now = await JitCompiledMethodsAsync(hosts);
            var settled = now - compiled < BenchOptions.JitSettledMethods;
            compiled = now;
            if (settled || warming.Elapsed.TotalSeconds >= options.MaxWarmupSeconds)
            {
                break;
            }
        }

        if (metering is not null)
        {
            // The warm-up's charges must be in before the measured run starts, or its catch-up would count them too.
            await metering.CatchUpAsync();
        }

        var warmedUp = warming.Elapsed.TotalSeconds;

        var gatewayBefore = await AllocatedBytesAsync(gateway);
        var inferenceBefore = inference is null ? 0 : await AllocatedBytesAsync(inference);
        var result = await load.RunAsync(url, Body, key, c, TimeSpan.FromSeconds(options.Seconds));
        double? catchUp = null;
        if (metering is not null)
        {
            metering.Sent += result.Requests;
            catchUp = await metering.CatchUpAsync();
        }

        var gatewayAllocated = await AllocatedBytesAsync(gateway) - gatewayBefore;
        double? inferenceAllocated = inference is null ? null : (await AllocatedBytesAsync(inference) - inferenceBefore) / result.Requests;
        return new PathResult(path, c, result, gatewayAllocated / result.Requests, inferenceAllocated, catchUp, warmedUp);
    }

    /// <summary>
    /// Reads the workspace's charged requests (<c>GET /v1/usage</c>, billing's roll-ups) until every request sent so far
    /// is in: requests answered before their usage is written would otherwise look faster than the host can keep up.
    /// </summary>
    private sealed class MeteringProbe(Uri host, string key)
    {
        public long Sent { get; set; }

        /// <summary>Seconds until billing has charged <see cref="Sent"/> requests.</summary>
        public async Task<double> CatchUpAsync()
        {
            using var http = new HttpClient { BaseAddress = host };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                using var usage = JsonDocument.Parse(await http.GetStringAsync("/v1/usage"));
                var charged = usage.RootElement.GetProperty("total").GetProperty("requests").GetInt64();
                if (charged >= Sent)
                {
                    return clock.Elapsed.TotalSeconds;
                }

                if (clock.Elapsed > TimeSpan.FromMinutes(3))
                {
                    throw new InvalidOperationException($"metering did not catch up: {charged} of {Sent} requests charged after 3 minutes");
                }

                await Task.Delay(50);
            }
        }
    }

    /// <summary>Bytes the process has allocated since it started (the runtime's own counter, from <c>/metrics</c>).</summary>
    private static async Task<double> AllocatedBytesAsync(Uri host)
    {
        using var http = new HttpClient { BaseAddress = host };
        var text = await http.GetStringAsync("/metrics");
        var match = AllocatedLine().Match(text);
        return match.Success
            ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException("/metrics has no dotnet_gc_heap_total_allocated_bytes");
    }

    /// <summary>Methods the hosts' JIT has compiled (and recompiled, tier by tier) since they started.</summary>
    private static async Task<double> JitCompiledMethodsAsync(IEnumerable<Uri> hosts)
    {
        double total = 0;
        foreach (var host in hosts)
        {
            using var http = new HttpClient { BaseAddress = host };
            var match = JitCompiledLine().Match(await http.GetStringAsync("/metrics"));
            total += match.Success
                ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
                : throw new InvalidOperationException("/metrics has no dotnet_jit_compiled_methods");
        }

        return total;
    }

    [GeneratedRegex(@"^dotnet_jit_compiled_methods(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex JitCompiledLine();

    [GeneratedRegex(@"^dotnet_gc_heap_total_allocated_bytes(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex AllocatedLine();

    /// <summary>Streams one at a time; for each, how long after the mock flushed its first chunk the client had it.</summary>
    private static async Task<StreamResult> StreamAsync(string path, MockUpstream mock, Uri url, string? key, int rounds)
    {
        using var http = new HttpClient();
        if (key is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        var delays = new List<double>(rounds);
        var buffer = new byte[16 * 1024];
        for (var i = 0; i < rounds + 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(StreamBody, Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync();
            var seen = new StringBuilder();
            double? delay = null;
            int read;
            while ((read = await body.ReadAsync(buffer)) > 0)
            {
                var now = Stopwatch.GetTimestamp();
                seen.Append(Encoding.UTF8.GetString(buffer, 0, read));
                if (delay is null && seen.ToString().Contains("\"content\":\"Hello\"", StringComparison.Ordinal))
                {
                    delay = Stopwatch.GetElapsedTime(mock.FirstChunkSentAt, now).TotalMilliseconds;
                }
            }

            if (delay is null || !seen.ToString().Contains("[DONE]", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{path}: the stream did not carry the first chunk and [DONE]:\n{seen}");
            }

            if (i >= 5)
            {
                delays.Add(delay.Value); // the first few warm the path up
            }
        }

        var sorted = delays.Order().ToArray();
        return new StreamResult(path, sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))]);
    }

    private static string Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return $"{Environment.ProcessorCount} cores{(cpu is null ? "" : $" ({cpu})")}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    /// <summary>The 1-minute load average now (what else the machine was doing), or null off Linux.</summary>
    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    public static void Print(BenchReport report, TextWriter output)
    {
        output.WriteLine($"machine: {report.Machine}; load tool: {report.Tool}; load average now: {LoadAverage()}");
        output.WriteLine();
        output.WriteLine("| path | c | RPS | p50 ms | p99 ms | added p50 ms | added p99 ms | RPS % of direct | p99 × direct | alloc B/req (gateway / inference) | metered RPS (catch-up s) | warm-up s |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in report.Paths)
        {
            var direct = report.Paths.First(d => d.Path == "direct" && d.Concurrency == r.Concurrency).Load;
            var isDirect = r.Path == "direct";
            var alloc = r.AllocatedBytesPerRequest is { } a
                ? $"{a:0}" + (r.InferenceAllocatedBytesPerRequest is { } b ? $" / {b:0}" : "")
                : "";
            output.WriteLine(
                $"| {r.Path} | {r.Concurrency} | {r.Load.Rps:0} | {r.Load.P50:0.000} | {r.Load.P99:0.000} | "
                + (isDirect ? "| | | |" : $"{r.Load.P50 - direct.P50:0.000} | {r.Load.P99 - direct.P99:0.000} | {100 * r.Load.Rps / direct.Rps:0.0}% | {r.Load.P99 / direct.P99:0.0}× |")
                + $" {alloc} |"
                + (r.MeteredRps is { } metered ? $" {metered:0} ({r.MeteringCatchUpSeconds:0.0}) |" : " |")
                + (isDirect ? " |" : $" {r.WarmupSeconds:0} |"));
        }

        if (report.Paths.FirstOrDefault(p => p.Path == "llmtune all" && p.Concurrency == 1) is { } one
            && report.Paths.FirstOrDefault(p => p.Path == "llmtune split" && p.Concurrency == 1) is { } split)
        {
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"split hop (split - all, c=1): p50 {split.Load.P50 - one.Load.P50:0.000} ms, p99 {split.Load.P99 - one.Load.P99:0.000} ms"));
        }

        output.WriteLine();
        output.WriteLine($"streaming, first chunk: client received it this long after the mock flushed it (mock pauses {MockUpstream.StreamPause.TotalMilliseconds:0} ms before the rest)");
        var directStream = report.Streams.First(s => s.Path == "direct");
        foreach (var s in report.Streams)
        {
            output.WriteLine(
                $"  {s.Path,-14} p50 {s.P50:0.000} ms  p99 {s.P99:0.000} ms" + (s.Path == "direct" ? "" : $"  (added p50 {s.P50 - directStream.P50:0.000} ms)"));
        }
    }
}
