namespace LLMTune.Platform.Modules;

/// <summary>Which modules run in this process and whether it is the single-process or the split deployment.</summary>
public sealed record HostTopology(IReadOnlyList<string> Targets, bool IsAllInOne)
{
    public const string All = "all";

    public bool Runs(string module) => IsAllInOne || Targets.Contains(module, StringComparer.OrdinalIgnoreCase);

    /// <summary>Parses "all" or a comma list such as "gateway,inference" against the known module names.</summary>
    public static HostTopology Parse(string? target, IEnumerable<string> knownModules)
    {
        var known = knownModules.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var requested = (target ?? All).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (requested.Length == 0 || requested.Any(t => t.Equals(All, StringComparison.OrdinalIgnoreCase)))
        {
            return new HostTopology(known, IsAllInOne: true);
        }

        var unknown = requested.Where(t => !known.Contains(t, StringComparer.OrdinalIgnoreCase)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException(
                $"Unknown target '{string.Join(", ", unknown)}'. Known targets: all, {string.Join(", ", known)}.");
        }

        return new HostTopology(requested.Select(t => t.ToLowerInvariant()).Distinct().ToList(), IsAllInOne: false);
    }
}
