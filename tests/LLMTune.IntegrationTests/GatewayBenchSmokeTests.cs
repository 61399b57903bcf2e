using LLMTune.Bench.Gateway;

namespace LLMTune.IntegrationTests;

/// <summary>The gateway bench's harness works end to end (figures, not timings: nothing here asserts a speed).</summary>
public sealed class GatewayBenchSmokeTests
{
    [Fact]
    public async Task The_bench_starts_all_and_split_hosts_and_reports_every_figure()
    {
        var report = await GatewayBench.RunAsync(BenchOptions.Smoke, TextWriter.Null);

        Assert.Equal(
            ["direct/1", "direct/16", "llmtune all/1", "llmtune all/16", "llmtune split/1", "llmtune split/16"],
            report.Paths.Select(p => $"{p.Path}/{p.Concurrency}"));
        Assert.All(report.Paths, p => Assert.True(p.Load.Requests > 0 && p.Load.P50 > 0 && p.Load.P99 >= p.Load.P50, $"{p.Path}: {p.Load}"));
        Assert.All(report.Paths.Where(p => p.Path != "direct"), p => Assert.True(p.AllocatedBytesPerRequest > 0, p.Path));
        Assert.All(report.Paths.Where(p => p.Path == "llmtune split"), p => Assert.True(p.InferenceAllocatedBytesPerRequest > 0, p.Path));
        Assert.All(report.Paths.Where(p => p.Path == "llmtune all"), p => Assert.True(p.MeteredRps > 0, $"{p.Path}: every request charged"));
        Assert.Equal(["direct", "llmtune all", "llmtune split"], report.Streams.Select(s => s.Path));

        var printed = new StringWriter();
        GatewayBench.Print(report, printed);
        Assert.Contains("| llmtune split | 16 |", printed.ToString());
        Assert.Contains("split hop", printed.ToString());
    }
}
