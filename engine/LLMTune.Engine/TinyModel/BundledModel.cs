namespace LLMTune.Engine.TinyModel;

/// <summary>
/// Where the committed build of <see cref="TinyModelRecipe"/> lives, and how tests and benchmarks find it: the file
/// named by <see cref="OverrideVariable"/>, else <see cref="RelativePath"/> in the nearest folder at or above the
/// binaries, else at or above the current directory.
/// </summary>
public static class BundledModel
{
    /// <summary>The model's path relative to the repository root (and to the host's executable folder, which gets a copy).</summary>
    public const string RelativePath = "models/llmtune-tiny.gguf";

    /// <summary>Environment variable that points tests and benchmarks at another build of the model.</summary>
    public const string OverrideVariable = "LLMTUNE_TINY_MODEL";

    // The walk up stops at the repository root, so a checkout without the model never picks up an unrelated copy above it.
    private const string RepositoryRootMarker = "LLMTune.sln";

    /// <summary>The bundled model's path, or null when it has not been built (or the override names a missing file).</summary>
    public static string? Find() =>
        Find(Environment.GetEnvironmentVariable(OverrideVariable), AppContext.BaseDirectory, Directory.GetCurrentDirectory());

    /// <summary>
    /// <paramref name="overridePath"/> when it is set (null when that file does not exist); otherwise the first
    /// <see cref="RelativePath"/> found walking up from each of <paramref name="searchFrom"/> in turn; null when none.
    /// </summary>
    public static string? Find(string? overridePath, params IEnumerable<string?> searchFrom)
    {
        ArgumentNullException.ThrowIfNull(searchFrom);
        if (!string.IsNullOrEmpty(overridePath))
        {
            return File.Exists(overridePath) ? overridePath : null;
        }

        foreach (var start in searchFrom)
        {
            if (string.IsNullOrWhiteSpace(start))
            {
                continue;
            }

            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.GetFullPath(Path.Combine(dir.FullName, RelativePath));
                if (File.Exists(candidate))
                {
                    return candidate;
                }

                if (File.Exists(Path.Combine(dir.FullName, RepositoryRootMarker)))
                {
                    break;
                }
            }
        }

        return null;
    }
}
