using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using LLMTune.Gateway.Workspaces;

namespace LLMTune.Host.Commands;

/// <summary><c>llmtune dev …</c>: the distributed topology on one machine, for trying it out and for tests.</summary>
public static class DevCommands
{
    /// <summary>Every service of split mode, in start order (the gateway last, once its destinations listen).</summary>
    public static readonly IReadOnlyList<string> Services = ["inference", "finetune", "webhooks", "billing", "batch", "gateway"];

    public static Command Create() => new("dev", "Development helpers.") { Split() };

    private static Command Split()
    {
        var dir = new Option<string>("--dir")
        {
            Description = "State folder: one store file per service, the shared artifact folder, logs and the generated secrets (kept between runs).",
            DefaultValueFactory = _ => Path.Combine("data", "split"),
        };
        var port = new Option<int>("--port")
        {
            Description = "Gateway port; the services take the next five (inference, finetune, webhooks, billing, batch). 0: free ports.",
            DefaultValueFactory = _ => 8080,
        };
        var rabbit = new Option<string?>("--rabbitmq")
        {
            Description = "The broker, amqp://user:pass@host:port/ (default: $RABBITMQ_URL). scripts/dev-split.sh starts a private node and passes it.",
        };
        var command = new Command("split", "Run every service as its own `llmtune serve --target <name>` process on its own embedded store file, over RabbitMQ. "
            + "Extra --Section:Key=value arguments go to every service. Ctrl+C stops them all.")
        {
            dir,
            port,
            rabbit,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, _) => RunSplitAsync(
            Path.GetFullPath(parse.GetValue(dir)!),
            parse.GetValue(port),
            parse.GetValue(rabbit) ?? Environment.GetEnvironmentVariable("RABBITMQ_URL"),
            [.. parse.UnmatchedTokens]));
        return command;
    }

    private static async Task<int> RunSplitAsync(string dir, int basePort, string? rabbitUrl, string[] extraArgs)
    {
        if (string.IsNullOrWhiteSpace(rabbitUrl) || !Uri.TryCreate(rabbitUrl, UriKind.Absolute, out var rabbit) || rabbit.Scheme is not ("amqp" or "amqps"))
        {
            await Console.Error.WriteLineAsync("A RabbitMQ URL is needed: --rabbitmq amqp://user:pass@host:5672/ or $RABBITMQ_URL "
                + "(scripts/dev-split.sh starts a private node and passes it).");
            return 2;
        }

        if (basePort is < 0 or > 65530)
        {
            await Console.Error.WriteLineAsync("--port must be between 0 and 65530.");
            return 2;
        }

        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        Directory.CreateDirectory(Path.Combine(dir, "artifacts"));
        var internalSecret = await SecretAsync(dir, "internal-secret", () => RandomToken(32));
        var operatorToken = await SecretAsync(dir, "operator-token", () => RandomToken(32));
        var webhooksKey = await SecretAsync(dir, "webhooks-encryption-key", () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        var apiKey = await InitialKeyAsync(dir);

        var urls = Services.Select((name, i) => (name, url: $"http://127.0.0.1:{(basePort == 0 ? FreePort() : Port(basePort, name))}"))
            .ToDictionary(s => s.name, s => s.url);
        string[] common =
        [
            "--Bus:Transport=RabbitMq", "--Storage:Provider=LiteDb",
            // Shared by finetune (writes trained models) and inference (loads them), as a bucket is in production.
            $"--Artifacts:LocalPath={Path.Combine(dir, "artifacts")}",
        ];
        // Secrets travel in the environment, which other users cannot read, rather than on the command line.
        var secrets = new Dictionary<string, string>
        {
            ["ConnectionStrings__RabbitMq"] = rabbitUrl,
            ["Internal__Secret"] = internalSecret,
            ["Admin__OperatorToken"] = operatorToken,
            ["Webhooks__EncryptionKey"] = webhooksKey,
        };

        var stopRequested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        var children = new List<ServiceProcess>();
        try
        {
            // The gateway last, once its destinations are ready (it checks their health from the start).
            foreach (var wave in new[] { Services.Where(s => s != "gateway").ToArray(), ["gateway"] })
            {
                var started = wave.Select(name => ServiceProcess.Start(name, urls[name], dir, secrets,
                    [.. common, .. OwnArgs(name, dir, urls), .. extraArgs])).ToList();
                children.AddRange(started);
                foreach (var child in started)
                {
                    if (!await child.WaitReadyAsync(TimeSpan.FromMinutes(3), stopRequested.Task))
                    {
                        if (stopRequested.Task.IsCompleted)
                        {
                            return 130;
                        }

                        await Console.Error.WriteLineAsync($"{child.Name} did not start (log: {child.LogPath}):\n{child.LogTail()}");
                        return 1;
                    }
                }
            }

            var keyFile = Path.Combine(dir, "initial-api-key");
            Console.WriteLine($"""
                LLMTune split mode: every service its own process and store file under {dir} (logs in {Path.Combine(dir, "logs")})
                  gateway    {urls["gateway"]}   <- use this one
                  inference  {urls["inference"]}
                  finetune   {urls["finetune"]}
                  webhooks   {urls["webhooks"]}
                  billing    {urls["billing"]}
                  batch      {urls["batch"]}
                  rabbitmq   {WithoutPassword(rabbit)}
                  api key    {apiKey}  (also in {keyFile})
                  operator   token for /admin in {Path.Combine(dir, "operator-token")}
                Try: curl -s {urls["gateway"]}/v1/models/llmtune/tiny/inference -H "Authorization: Bearer $(cat {keyFile})" \
                       -H "Content-Type: application/json" -d '{"{"}"prompt": "Summarize LLMTune in one sentence.", "maxTokens": 40{"}"}'
                Ctrl+C stops everything.
                """);

            // A service that exits (or is killed to try a failure) leaves the others running, as in a real deployment.
            var running = children.ToList();
            while (running.Count > 0)
            {
                var done = await Task.WhenAny(running.Select(c => c.Exited).Append(stopRequested.Task));
                if (stopRequested.Task.IsCompleted)
                {
                    break;
                }

                var child = running.First(c => c.Exited == done);
                running.Remove(child);
                Console.WriteLine($"{child.Name} exited with code {child.ExitCode} (log: {child.LogPath}); the others keep running.");
            }

            return 0;
        }
        finally
        {
            await Task.WhenAll(children.Select(c => c.StopAsync()));
        }

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true; // stop the children first, then return normally
            stopRequested.TrySetResult();
        }
    }

    private static IEnumerable<string> OwnArgs(string name, string dir, Dictionary<string, string> urls)
    {
        yield return $"--Storage:LiteDbPath={Path.Combine(dir, name, name + ".db")}";
        switch (name)
        {
            case "gateway":
                foreach (var service in Services.Where(s => s != "gateway"))
                {
                    yield return $"--ReverseProxy:Clusters:{service}:Destinations:{service}-1:Address={urls[service]}/";
                }

                break;
            case "finetune":
                yield return $"--Finetune:WorkPath={Path.Combine(dir, name, "work")}";
                break;
        }
    }

    private static int Port(int basePort, string name) => name == "gateway" ? basePort : basePort + 1 + Services.ToList().IndexOf(name);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string WithoutPassword(Uri url) => new UriBuilder(url) { Password = url.UserInfo.Contains(':', StringComparison.Ordinal) ? "***" : "" }.Uri.ToString();

    private static string RandomToken(int bytes) => Convert.ToHexString(RandomNumberGenerator.GetBytes(bytes)).ToLowerInvariant();

    /// <summary>A secret generated on the first run and kept, owner-readable only, so restarts keep working with the stores they wrote.</summary>
    private static async Task<string> SecretAsync(string dir, string name, Func<string> create)
    {
        var file = Path.Combine(dir, name);
        if (File.Exists(file) && (await File.ReadAllTextAsync(file)).Trim() is { Length: > 0 } existing)
        {
            return existing;
        }

        var value = create();
        await WriteOwnerOnlyAsync(file, value);
        return value;
    }

    /// <summary>
    /// The first run creates a workspace (Scale, as the single process's default) and its key in the gateway's store,
    /// before the gateway runs: the embedded store is one process's file.
    /// </summary>
    private static async Task<string> InitialKeyAsync(string dir)
    {
        var keyFile = Path.Combine(dir, "initial-api-key");
        var store = Path.Combine(dir, "gateway", "gateway.db");
        if (File.Exists(keyFile) && File.Exists(store))
        {
            return (await File.ReadAllTextAsync(keyFile)).Trim();
        }

        Directory.CreateDirectory(Path.GetDirectoryName(store)!);
        string[] args = ["--Serilog:MinimumLevel:Default=Warning", "--Storage:Provider=LiteDb", $"--Storage:LiteDbPath={store}"];
        await using var app = LLMTuneHost.Build(args, "all"); // only the gateway's store is touched, and not served
        var workspaces = app.Services.GetRequiredService<WorkspaceService>();
        await workspaces.EnsureIndexesAsync(CancellationToken.None);
        var name = "dev-" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var created = await workspaces.CreateAsync(name, Plans.Scale, CancellationToken.None);
        await WriteOwnerOnlyAsync(keyFile, created.Secret);
        return created.Secret;
    }

    private static async Task WriteOwnerOnlyAsync(string file, string value)
    {
        await File.WriteAllTextAsync(file, value + Environment.NewLine);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>One service as a child <c>llmtune serve</c> process, its output in <c>logs/&lt;name&gt;.log</c>.</summary>
    private sealed class ServiceProcess
    {
        private readonly Process process;
        private readonly StreamWriter log;
        private bool closed;
        private readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private ServiceProcess(string name, string url, Process process, StreamWriter log, string logPath)
        {
            Name = name;
            Url = url;
            this.process = process;
            this.log = log;
            LogPath = logPath;
        }

        public string Name { get; }
        public string Url { get; }
        public string LogPath { get; }
        public Task Exited => exited.Task;
        public int ExitCode => process.ExitCode;

        public static ServiceProcess Start(string name, string url, string dir, IReadOnlyDictionary<string, string> environment, string[] args)
        {
            // The same executable: `llmtune` (apphost) or `dotnet llmtune.dll`.
            var self = Environment.ProcessPath!;
            var info = new ProcessStartInfo(self)
            {
                // Its own folder, so any relative ./data default lands there and never in another service's.
                WorkingDirectory = Directory.CreateDirectory(Path.Combine(dir, name)).FullName,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }

            if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            {
                info.ArgumentList.Add(typeof(DevCommands).Assembly.Location);
            }

            foreach (var arg in new[] { "serve", "--target", name, "--urls", url }.Concat(args))
            {
                info.ArgumentList.Add(arg);
            }

            var logPath = Path.Combine(dir, "logs", name + ".log");
            var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            var child = new ServiceProcess(name, url, process, log, logPath);
            process.OutputDataReceived += (_, e) => child.Write(e.Data);
            process.ErrorDataReceived += (_, e) => child.Write(e.Data);
            process.Exited += (_, _) => child.exited.TrySetResult();
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return child;
        }

        public async Task<bool> WaitReadyAsync(TimeSpan timeout, Task stop)
        {
            using var client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(2) };
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < timeout && !Exited.IsCompleted && !stop.IsCompleted)
            {
                try
                {
                    using var response = await client.GetAsync("/readyz"); // store, bus and models, not only alive
                    if (response.IsSuccessStatusCode)
                    {
                        return true;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // Not listening yet.
                }

                await Task.WhenAny(Exited, stop, Task.Delay(200));
            }

            return false;
        }

        public string LogTail()
        {
            using var reader = new StreamReader(new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(30));
        }

        /// <summary>SIGTERM (a graceful drain, as <c>docker stop</c>), then a kill after 40 s.</summary>
        public async Task StopAsync()
        {
            if (!Exited.IsCompleted)
            {
                // Ctrl+C in a terminal reaches the children too; this covers SIGTERM and a stop from a test.
                using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardError = true })!)
                {
                    await kill.WaitForExitAsync();
                }

                if (await Task.WhenAny(Exited, Task.Delay(TimeSpan.FromSeconds(40))) != Exited)
                {
                    process.Kill(entireProcessTree: true);
                    await Exited;
                }
            }

            process.WaitForExit(); // drains the redirected output
            lock (log)
            {
                closed = true;
                log.Dispose();
            }

            process.Dispose();
        }

        private void Write(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (log)
            {
                if (!closed)
                {
                    log.WriteLine(line);
                }
            }
        }
    }
}
