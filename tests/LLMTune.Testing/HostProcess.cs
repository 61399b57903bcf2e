using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace LLMTune.Testing;

/// <summary>The <c>llmtune</c> executable as a child process, for start-up, restart and kill tests.</summary>
public sealed partial class HostProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly TaskCompletionSource<Uri> listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HostProcess(Process process)
    {
        this.process = process;
    }

    public Uri Address => listening.Task.Result;

    /// <summary>The operating system's process id (for attaching diagnostics tools).</summary>
    public int Id => process.Id;

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <c>llmtune serve</c> in <paramref name="workingDirectory"/> and waits until it listens: on a free port, or
    /// where a <c>--urls</c> in <paramref name="extraArgs"/> says (a restart on the same port).
    /// </summary>
    public static async Task<HostProcess> StartAsync(string workingDirectory, params string[] extraArgs)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "llmtune.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] listen = extraArgs.Contains("--urls") ? [] : ["--urls", "http://127.0.0.1:0"];
        foreach (var arg in new[] { dll, "serve" }.Concat(listen).Concat(extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        var host = new HostProcess(new Process { StartInfo = info, EnableRaisingEvents = true });
        host.process.OutputDataReceived += (_, e) => host.OnLine(e.Data);
        host.process.ErrorDataReceived += (_, e) => host.OnLine(e.Data);
        host.process.Exited += (_, _) => host.listening.TrySetException(new InvalidOperationException($"llmtune exited early:\n{host.Output}"));
        host.process.Start();
        host.process.BeginOutputReadLine();
        host.process.BeginErrorReadLine();
        await host.listening.Task.WaitAsync(TimeSpan.FromMinutes(2));
        return host;
    }

    /// <summary>SIGTERM, as Kubernetes and docker stop send; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return process.ExitCode;
    }

    /// <summary>SIGKILL: the process dies mid-work, as on a node failure.</summary>
    public async Task KillAsync()
    {
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
    }

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

        if (Listening().Match(line) is { Success: true } match)
        {
            listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            await KillAsync();
        }

        process.Dispose();
    }

    [GeneratedRegex("Now listening on: \\\\?\"?(http://[0-9.:]+)")]
    private static partial Regex Listening();
}
