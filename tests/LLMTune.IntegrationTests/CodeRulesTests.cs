using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace LLMTune.IntegrationTests;

/// <summary>
/// Rules the compiler does not check: using order (System first, then alphabetical; the build's style analyzers
/// check unnecessary usings and formatting but not order) and which projects a service may reference.
/// </summary>
public sealed partial class CodeRulesTests
{
    private static readonly string Root = FindRoot();

    [Fact]
    public void Usings_are_sorted_with_System_first()
    {
        var unsorted = new List<string>();
        foreach (var file in SourceFiles("*.cs"))
        {
            var usings = File.ReadLines(file)
                .TakeWhile(line => !line.StartsWith("namespace", StringComparison.Ordinal))
                .Select(line => UsingDirective().Match(line))
                .Where(m => m.Success)
                .Select(m => m.Groups[1].Value)
                .ToList();
            var sorted = usings
                .OrderBy(u => u == "System" || u.StartsWith("System.", StringComparison.Ordinal) ? 0 : 1)
                .ThenBy(u => u.ToLowerInvariant(), StringComparer.Ordinal)
                .ToList();
            if (!usings.SequenceEqual(sorted))
            {
                unsorted.Add($"{Path.GetRelativePath(Root, file)}: expected {string.Join(", ", sorted)}");
            }
        }

        Assert.True(unsorted.Count == 0, "Usings out of order:\n" + string.Join("\n", unsorted));
    }

    [Fact]
    public void Services_reference_only_contracts_platform_and_engine()
    {
        var allowed = new[] { "LLMTune.Contracts.csproj", "LLMTune.Platform.csproj", "LLMTune.Engine.csproj" };
        var violations = new List<string>();
        foreach (var project in SourceFiles("*.csproj").Where(p => p.Contains($"{Path.DirectorySeparatorChar}services{Path.DirectorySeparatorChar}") && p.Contains($"{Path.DirectorySeparatorChar}src{Path.DirectorySeparatorChar}")))
        {
            var references = XDocument.Load(project).Descendants("ProjectReference").Select(r => Path.GetFileName((string)r.Attribute("Include")!));
            violations.AddRange(references.Where(r => !allowed.Contains(r)).Select(r => $"{Path.GetFileName(project)} references {r}"));
        }

        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    private static IEnumerable<string> SourceFiles(string pattern) =>
        Directory.EnumerateFiles(Root, pattern, SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or "node_modules" or ".git"));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LLMTune.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("LLMTune.sln not found above the test binaries.");
    }

    [GeneratedRegex(@"^using ([A-Za-z][\w.]*);\s*$")]
    private static partial Regex UsingDirective();
}
