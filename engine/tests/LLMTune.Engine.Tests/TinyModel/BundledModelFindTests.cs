using LLMTune.Engine.TinyModel;

namespace LLMTune.Engine.Tests.TinyModel;

/// <summary>
/// How <see cref="BundledModel.Find(string?, IEnumerable{string?})"/> picks the model, in throwaway folder trees.
/// Each tree's root holds the repository marker, so a model above the temp folder can never leak into a result.
/// </summary>
public sealed class BundledModelFindTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llmtune-bundled-find-").FullName;

    public BundledModelFindTests() => File.WriteAllText(Path.Combine(_root, "LLMTune.sln"), "");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void An_existing_override_wins_over_a_model_found_by_walking_up()
    {
        WriteModel(_root);
        var overridePath = Path.Combine(_root, "elsewhere.gguf");
        File.WriteAllText(overridePath, "gguf");

        Assert.Equal(overridePath, BundledModel.Find(overridePath, Folder("bin", "release")));
    }

    [Fact]
    public void An_override_naming_a_missing_file_gives_null_without_walking_up()
    {
        WriteModel(_root);

        Assert.Null(BundledModel.Find(Path.Combine(_root, "missing.gguf"), Folder("bin", "release")));
    }

    [Fact]
    public void Walking_up_returns_the_nearest_model()
    {
        WriteModel(_root);
        var nearer = WriteModel(Folder("artifacts"));

        Assert.Equal(nearer, BundledModel.Find(null, Folder("artifacts", "bin", "release")));
        Assert.Equal(nearer, BundledModel.Find("", Folder("artifacts", "bin", "release")));
    }

    [Fact]
    public void The_next_start_folder_is_searched_when_the_first_finds_nothing()
    {
        var checkout = Folder("checkout");
        File.WriteAllText(Path.Combine(checkout, "LLMTune.sln"), "");
        var model = WriteModel(checkout);

        Assert.Equal(model, BundledModel.Find(null, Folder("outside", "bin"), Folder("checkout", "src")));
    }

    [Fact]
    public void The_walk_stops_at_the_repository_root_and_gives_null_when_nothing_is_found()
    {
        WriteModel(_root);
        var checkout = Folder("checkout");
        File.WriteAllText(Path.Combine(checkout, "LLMTune.sln"), "");

        Assert.Null(BundledModel.Find(null, Folder("checkout", "bin", "release"), "", null));
    }

    private string Folder(params string[] parts) => Directory.CreateDirectory(Path.Combine([_root, .. parts])).FullName;

    private static string WriteModel(string folder)
    {
        var path = Path.GetFullPath(Path.Combine(folder, BundledModel.RelativePath));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "gguf");
        return path;
    }
}

/// <summary>
/// <see cref="BundledModel.Find()"/> reads <see cref="BundledModel.OverrideVariable"/>. Setting it is process-wide, so
/// these tests run alone: other tests read the variable to find the real model.
/// </summary>
[Collection(BundledModelOverrideCollection.Name)]
public sealed class BundledModelOverrideVariableTests
{
    [Fact]
    public void Find_honours_the_override_variable()
    {
        var folder = Directory.CreateTempSubdirectory("llmtune-bundled-override-").FullName;
        var previous = Environment.GetEnvironmentVariable(BundledModel.OverrideVariable);
        try
        {
            var model = Path.Combine(folder, "other-build.gguf");
            File.WriteAllText(model, "gguf");
            Environment.SetEnvironmentVariable(BundledModel.OverrideVariable, model);
            Assert.Equal(model, BundledModel.Find());

            Environment.SetEnvironmentVariable(BundledModel.OverrideVariable, Path.Combine(folder, "missing.gguf"));
            Assert.Null(BundledModel.Find());
        }
        finally
        {
            Environment.SetEnvironmentVariable(BundledModel.OverrideVariable, previous);
            Directory.Delete(folder, recursive: true);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BundledModelOverrideCollection
{
    public const string Name = "Bundled model override variable";
}
