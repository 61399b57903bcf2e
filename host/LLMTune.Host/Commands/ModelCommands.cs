using System.CommandLine;
using System.Globalization;
using LLMTune.Engine.TinyModel;
using Spectre.Console;

namespace LLMTune.Host.Commands;

/// <summary><c>llmtune model …</c>: build and evaluate the bundled model.</summary>
public static class ModelCommands
{
    public static Command Create() => new("model", "Build and evaluate LLMTune's bundled model.")
    {
        BuildTiny(),
        EvaluateTiny(),
    };

    private static Command BuildTiny()
    {
        var output = new Option<string>("--output", "-o") { Description = "Where to write the GGUF.", DefaultValueFactory = _ => Path.Combine("models", "llmtune-tiny.gguf") };
        var seed = new Option<int>("--seed") { Description = "Seed for the corpus, vocabulary, initialisation and data order; the same seed (and threads) rebuilds the same file.", DefaultValueFactory = _ => new TinyModelRecipeOptions().Seed };
        var threads = new Option<int>("--threads") { Description = "Training threads (speed only: the same seed gives the same file with any thread count).", DefaultValueFactory = _ => new TinyModelRecipeOptions().Threads };
        var steps = new Option<int?>("--max-steps") { Description = "Stop training after this many steps (a quick, weaker build)." };
        var noEval = new Option<bool>("--no-eval") { Description = "Skip the held-out evaluation at the end." };
        var command = new Command("build-tiny", "Build models/llmtune-tiny.gguf from scratch: synthetic corpus, BPE vocabulary, random init, pre-training, held-out evaluation.")
        {
            output, seed, threads, steps, noEval,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new TinyModelRecipeOptions
            {
                OutputPath = parse.GetValue(output)!,
                Seed = parse.GetValue(seed),
                Threads = parse.GetValue(threads),
                MaxSteps = parse.GetValue(steps),
                Evaluate = !parse.GetValue(noEval),
            };
            TinyModelBuildResult result = null!;
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var bar = context.AddTask("starting", maxValue: 1.0);
                    var progress = new Progress<RecipeProgress>(p =>
                    {
                        bar.Value = Math.Clamp(p.Fraction, 0, 1);
                        bar.Description = p.TotalSteps > 0
                            ? string.Create(CultureInfo.InvariantCulture, $"{p.Stage} step {p.Step}/{p.TotalSteps} loss {p.Loss:0.000} {p.TokensPerSecond:0} tok/s")
                            : p.Stage;
                    });
                    result = await TinyModelRecipe.BuildAsync(options, progress, ct);
                    bar.Value = 1.0;
                });

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {result.OutputPath}: {result.FileBytes:N0} bytes, {result.Parameters:N0} parameters, vocabulary {result.VocabularySize}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"trained {result.Steps} steps, {result.TrainedTokens:N0} tokens at {result.TokensPerSecond:0} tokens/s; training {result.TrainingTime:hh\\:mm\\:ss}, total {result.TotalTime:hh\\:mm\\:ss}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"eval loss {result.InitialEvalLoss:0.000} -> {result.FinalEvalLoss:0.000}"));
            if (result.Evaluation is { } evaluation)
            {
                Console.Write(evaluation.Format());
            }

            return 0;
        });
        return command;
    }

    private static Command EvaluateTiny()
    {
        var model = new Option<string>("--model", "-m") { Description = "The GGUF to evaluate.", DefaultValueFactory = _ => Path.Combine("models", "llmtune-tiny.gguf") };
        var command = new Command("evaluate-tiny", "Score a tiny model on the recipe's held-out prompts (exact match per task family).") { model };
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(model)!;
            if (!File.Exists(path))
            {
                await Console.Error.WriteLineAsync($"No model at {path}.");
                return 1;
            }

            var report = await TinyModelEvaluation.RunAsync(path, cancellationToken: ct);
            Console.Write(report.Format());
            return 0;
        });
        return command;
    }
}
