using System.Globalization;
using LLMTune.Bench.Gateway;

// Gateway bench: ./bench/gateway/run.sh [--seconds 5] [--warmup 2] [--tool auto|wrk|dotnet] [--no-split] [--smoke]
// Direct to a mock OpenAI upstream vs through LLMTune (all mode, and split: gateway -> YARP -> inference), c=1 and c=16.
if (args is ["--hold"])
{
    await GatewayBench.HoldAsync(Console.Out);
    return 0;
}

var options = new BenchOptions();
for (var i = 0; i < args.Length; i++)
{
    options = args[i] switch
    {
        "--seconds" => options with { Seconds = double.Parse(args[++i], CultureInfo.InvariantCulture) },
        "--warmup" => options with { WarmupSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture) },
        "--max-warmup" => options with { MaxWarmupSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture) },
        "--stream-rounds" => options with { StreamRounds = int.Parse(args[++i], CultureInfo.InvariantCulture) },
        "--tool" => options with { Tool = args[++i] },
        "--no-split" => options with { Split = false },
        "--smoke" => BenchOptions.Smoke,
        _ => throw new ArgumentException($"unknown argument {args[i]}"),
    };
}

Console.WriteLine($"gateway bench: {options.Seconds:0.#} s per measurement after warm-up ({options.WarmupSeconds:0.#} s rounds until the host's JIT settles, at most {options.MaxWarmupSeconds:0.#} s); load average at start: {GatewayBench.LoadAverage()}");
var report = await GatewayBench.RunAsync(options, Console.Out);
GatewayBench.Print(report, Console.Out);
return 0;
