using LLMTune.Engine.Gguf;
using LLMTune.Engine.TinyModel;

namespace LLMTune.Engine.Tests.TinyModel;

/// <summary>The committed <c>models/llmtune-tiny.gguf</c>, scored on the held-out prompts of the recipe that built it.</summary>
public sealed class BundledModelTests
{
    private const long MaxModelBytes = 20L * 1024 * 1024;

    [Fact]
    public async Task Bundled_model_answers_held_out_prompts_with_at_least_80_percent_exact_match()
    {
        var path = BundledModelPath();
        var report = await TinyModelEvaluation.RunAsync(path, new TinyEvaluationOptions { Threads = 1 }, TestContext.Current.CancellationToken);

        var output = TestContext.Current.TestOutputHelper!;
        output.WriteLine(report.Format());
        foreach (var miss in report.Answers.Where(a => !a.Correct).Take(30))
        {
            output.WriteLine($"miss [{miss.Example.Family}] {miss.Example.Prompt} => '{miss.Generated}' (expected '{miss.Example.Answer}')");
        }

        Assert.Equal(TinyModelRecipe.GenerateCorpus(new TinyModelRecipeOptions()).Families.Count, report.Families.Count);
        Assert.True(report.Total >= 300, $"only {report.Total} held-out prompts");
        Assert.True(report.Accuracy >= 0.80, $"held-out exact match {report.Accuracy:P1} is below 80%:\n{report.Format()}");
    }

    [Fact]
    public void Bundled_model_is_a_small_llama_gguf_with_the_chatml_template()
    {
        var path = BundledModelPath();
        Assert.InRange(new FileInfo(path).Length, 1, MaxModelBytes);
        var gguf = GgufFile.Read(path);
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(TinyModelRecipe.ModelName, gguf.Metadata.GetString("general.name"));
        Assert.Contains("<|im_start|>", gguf.Metadata.GetString("tokenizer.chat_template"), StringComparison.Ordinal);
        Assert.Equal("Apache-2.0", gguf.Metadata.GetString("general.license"));
    }

    /// <summary>
    /// The bundled model, which these tests require (they fail rather than skip without it). Also looks beside this
    /// source file's checkout, for a build with an artifacts path outside the repository made before the model existed.
    /// </summary>
    internal static string BundledModelPath()
    {
        var overridePath = Environment.GetEnvironmentVariable(BundledModel.OverrideVariable);
        return BundledModel.Find()
            ?? BundledModel.Find(overridePath, SourceDirectory())
            ?? throw new FileNotFoundException(string.IsNullOrEmpty(overridePath)
                ? $"{BundledModel.RelativePath} is missing; run `llmtune model build-tiny`."
                : $"{BundledModel.OverrideVariable} points at {overridePath}, which does not exist.");
    }

    private static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
