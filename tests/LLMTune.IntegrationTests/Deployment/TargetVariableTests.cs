using System.Diagnostics;
using LLMTune.Host.Commands;

namespace LLMTune.IntegrationTests.Deployment;

/// <summary>The image picks its modules from LLMTUNE_TARGET (its TARGET build argument) when no --target is given.</summary>
public sealed class TargetVariableTests
{
    [Theory]
    [InlineData("serve")]
    [InlineData(null)] // `llmtune` with no command serves too
    public async Task Serve_without_a_target_takes_it_from_the_environment(string? command)
    {
        var (exitCode, output) = await RunAsync(command, ("LLMTUNE_TARGET", "no-such-module"));
        Assert.Equal(2, exitCode);
        Assert.Contains("Unknown target 'no-such-module'", output);
    }

    [Fact]
    public async Task An_explicit_target_wins_over_the_environment()
    {
        var (exitCode, output) = await RunAsync("serve --target other-module", ("LLMTUNE_TARGET", "no-such-module"));
        Assert.Equal(2, exitCode);
        Assert.Contains("Unknown target 'other-module'", output);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string? command, (string Name, string Value) variable)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Directory.CreateTempSubdirectory("llmtune-target-").FullName,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "llmtune.dll"));
        foreach (var arg in (command ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add("--urls=http://127.0.0.1:0");
        info.Environment[variable.Name] = variable.Value;
        Assert.Equal(ServeCommand.TargetVariable, variable.Name);

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        return (process.ExitCode, await stdout + await stderr);
    }
}
