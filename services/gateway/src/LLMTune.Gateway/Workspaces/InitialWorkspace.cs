using LLMTune.Platform.Modules;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Gateway.Workspaces;

public sealed class InitialWorkspaceOptions
{
    public const string Section = "Gateway:InitialWorkspace";

    /// <summary>Where the first start writes the default workspace's key (owner-only permissions).</summary>
    public string KeyFile { get; set; } = "./data/initial-api-key";
}

/// <summary>
/// Creates the store's indexes, and on the very first start of the single-process mode (no workspace yet) creates
/// the <c>default</c> workspace and key, prints the key once and writes it to a file only the owner can read.
/// </summary>
public sealed class InitialWorkspace(
    WorkspaceService workspaces, HostTopology topology, IOptions<InitialWorkspaceOptions> options, ILogger<InitialWorkspace> logger)
    : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await workspaces.EnsureIndexesAsync(ct);
        if (!topology.IsAllInOne || await workspaces.CountAsync(ct) > 0)
        {
            return;
        }

        // The owner's own workspace on a one-machine install: Scale, so the Sandbox quota does not cap it (an operator can change it).
        var created = await workspaces.CreateAsync("default", Plans.Scale, ct);
        var file = Path.GetFullPath(options.Value.KeyFile);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, created.Secret + Environment.NewLine, ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        // The secret goes to the console directly, never through the logger.
        Console.WriteLine();
        Console.WriteLine("  LLMTune created the 'default' workspace. Its API key (shown once):");
        Console.WriteLine($"    {created.Secret}");
        Console.WriteLine($"  Also saved to {file} (readable only by you).");
        Console.WriteLine();
        logger.LogInformation("Created the default workspace {WorkspaceId}; its key was written to {KeyFile}", created.Workspace.Id, file);
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
