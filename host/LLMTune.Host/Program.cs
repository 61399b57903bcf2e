using System.CommandLine;
using LLMTune.Host.Commands;

// Regexes that come from clients (a tool's JSON-schema `pattern`, checked by the schema validator) run under this
// process-wide limit, so a pathological pattern cannot pin a core; it must be set before any Regex is built.
AppDomain.CurrentDomain.SetData("REGEX_DEFAULT_MATCH_TIMEOUT", TimeSpan.FromSeconds(1));

// A thin entry point: parse the command line, then either serve or run an admin/model command.
var root = new RootCommand("LLMTune: self-hostable LLM inference and fine-tuning platform.")
{
    ServeCommand.Create(),
    AdminCommands.Create(),
    ModelCommands.Create(),
    FineTuneCommands.Create(),
    DevCommands.Create(),
};

// `llmtune` with no command serves, like `llmtune serve` ($LLMTUNE_TARGET, else everything).
root.SetAction((parse, ct) => ServeCommand.RunAsync(parse.UnmatchedTokens.ToArray(), ServeCommand.DefaultTarget(), null, ct));
root.TreatUnmatchedTokensAsErrors = false;
// The web host handles SIGTERM/Ctrl+C itself (graceful drain); System.CommandLine must not race it with a hard exit.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
