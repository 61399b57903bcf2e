using System.CommandLine;
using LLMTune.Gateway.Admin;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Storage;

namespace LLMTune.Host.Commands;

/// <summary><c>llmtune admin …</c>: operator tasks straight on the configured store (the same as the /admin API).</summary>
public static class AdminCommands
{
    public static Command Create()
    {
        var workspaces = new Command("workspaces", "Create and list workspaces, and set their plan.")
        {
            CreateWorkspace(),
            ListWorkspaces(),
            SetPlan(),
        };
        return new Command("admin", "Operator administration on the configured store. With the embedded store, stop the server first or use the /admin API.")
        {
            workspaces,
        };
    }

    private static Command CreateWorkspace()
    {
        var name = new Option<string>("--name") { Description = "Workspace name (letters, digits, '-', '_', '.').", Required = true };
        var plan = new Option<string>("--plan") { Description = "sandbox, growth or scale.", DefaultValueFactory = _ => Plans.Sandbox };
        var command = new Command("create", "Create a workspace and its first API key (the key is shown once).") { name, plan };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => WithServices(parse, async (services, token) =>
        {
            var error = WorkspaceInput.ValidateName(parse.GetValue(name)) ?? WorkspaceInput.ValidatePlan(parse.GetValue(plan));
            if (error is not null)
            {
                await Console.Error.WriteLineAsync(error);
                return 2;
            }

            try
            {
                var created = await services.GetRequiredService<WorkspaceService>().CreateAsync(parse.GetValue(name)!, parse.GetValue(plan)!, token);
                Console.WriteLine($"workspace  {created.Workspace.Id}  {created.Workspace.Name}  plan={created.Workspace.Plan}");
                Console.WriteLine($"api key    {created.Secret}");
                Console.WriteLine("Store the key now: it is not shown again.");
                return 0;
            }
            catch (DuplicateDocumentException)
            {
                await Console.Error.WriteLineAsync($"A workspace named '{parse.GetValue(name)}' already exists.");
                return 1;
            }
        }, ct));
        return command;
    }

    private static Command ListWorkspaces()
    {
        var command = new Command("list", "List workspaces, newest first.");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => WithServices(parse, async (services, token) =>
        {
            foreach (var w in await services.GetRequiredService<WorkspaceService>().ListAsync(token))
            {
                Console.WriteLine($"{w.Id}  {w.Name,-24} plan={w.Plan,-8} created={w.CreatedAt:yyyy-MM-ddTHH:mm:ssZ}");
            }

            return 0;
        }, ct));
        return command;
    }

    private static Command SetPlan()
    {
        var workspace = new Argument<string>("workspace") { Description = "Workspace id or name." };
        var plan = new Option<string>("--plan") { Description = "sandbox, growth or scale.", Required = true };
        var command = new Command("set-plan", "Change a workspace's plan.") { workspace, plan };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => WithServices(parse, async (services, token) =>
        {
            if (WorkspaceInput.ValidatePlan(parse.GetValue(plan)) is { } error)
            {
                await Console.Error.WriteLineAsync(error);
                return 2;
            }

            var updated = await services.GetRequiredService<WorkspaceService>().SetPlanAsync(parse.GetValue(workspace)!, parse.GetValue(plan)!, token);
            if (updated is null)
            {
                await Console.Error.WriteLineAsync($"No workspace '{parse.GetValue(workspace)}'.");
                return 1;
            }

            Console.WriteLine($"{updated.Id}  {updated.Name}  plan={updated.Plan}");
            return 0;
        }, ct));
        return command;
    }

    /// <summary>Builds the host's services (without serving) so commands use the same store and rules as the API.</summary>
    private static async Task<int> WithServices(ParseResult parse, Func<IServiceProvider, CancellationToken, Task<int>> action, CancellationToken ct)
    {
        // Commands print their own results; only warnings and errors go to the log.
        string[] args = ["--Serilog:MinimumLevel:Default=Warning", .. parse.UnmatchedTokens];
        await using var app = LLMTuneHost.Build(args, "all");
        await app.Services.GetRequiredService<WorkspaceService>().EnsureIndexesAsync(ct);
        return await action(app.Services, ct);
    }
}
