using System.CommandLine;

namespace LLMTune.Host.Commands;

public static class ServeCommand
{
    /// <summary>The target when <c>--target</c> is not given (the container image sets it from its TARGET build argument).</summary>
    public const string TargetVariable = "LLMTUNE_TARGET";

    public static string DefaultTarget() =>
        Environment.GetEnvironmentVariable(TargetVariable) is { Length: > 0 } target ? target : "all";

    public static Command Create()
    {
        var target = new Option<string>("--target", "-t")
        {
            Description = "Modules to run: 'all' (one process, in-memory bus, embedded store) or a comma list such as 'gateway' "
                + "or 'inference,batch' (split mode: RabbitMQ and MongoDB from configuration). Default: $LLMTUNE_TARGET, else 'all'.",
            DefaultValueFactory = _ => DefaultTarget(),
        };
        var urls = new Option<string?>("--urls")
        {
            Description = "Addresses to listen on (default http://0.0.0.0:8080; ASPNETCORE_URLS also works).",
        };
        var command = new Command("serve", "Run LLMTune's HTTP API and workers. Extra --Section:Key=value arguments override configuration.")
        {
            target,
            urls,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => RunAsync(parse.UnmatchedTokens.ToArray(), parse.GetValue(target), parse.GetValue(urls), ct));
        return command;
    }

    public static async Task<int> RunAsync(string[] configArgs, string? target, string? urls, CancellationToken ct)
    {
        var args = urls is null ? configArgs : [.. configArgs, "--urls", urls];
        WebApplication app;
        try
        {
            app = LLMTuneHost.Build(args, target);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 2;
        }

        try
        {
            // Ctrl+C/SIGTERM: Kestrel stops accepting, in-flight requests finish within Http:ShutdownTimeout, consumers stop.
            await app.RunAsync();
            return 0;
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync($"Invalid configuration: {string.Join("; ", e.Failures)}");
            return 2;
        }
    }
}
