using System.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace LLMTune.IntegrationTests.Deployment;

/// <summary>The repository's deployment files (Dockerfile, docker-compose.yml, k8s/), read as plain YAML trees.</summary>
internal static class DeploymentFiles
{
    public static readonly string Root = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    /// <summary>docker-compose.yml with its anchors and merge keys resolved, as compose resolves them.</summary>
    public static YamlMap Compose() => (YamlMap)ParseDocuments(Read("docker-compose.yml")).Single()!;

    /// <summary>Every document of every YAML file under <paramref name="folder"/> (one folder, not its subfolders).</summary>
    public static IReadOnlyList<YamlMap> ManifestsIn(string folder) =>
        Directory.GetFiles(PathOf(folder), "*.yaml").Order(StringComparer.Ordinal)
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .SelectMany(f => ParseDocuments(File.ReadAllText(f)))
            .OfType<YamlMap>()
            .ToList();

    public static IReadOnlyList<object?> ParseDocuments(string yaml)
    {
        // Compose and kubectl refuse a mapping with a key twice (an easy result of a git merge); so does this reader.
        // Checked on the text as written: once merge keys (<<) are expanded, overriding a merged key is legitimate.
        var checking = new DeserializerBuilder().WithDuplicateKeyChecking().Build();
        var raw = new Parser(new StringReader(yaml));
        raw.Consume<StreamStart>();
        while (raw.Accept<DocumentStart>(out _))
        {
            checking.Deserialize(raw);
        }

        var deserializer = new DeserializerBuilder().Build();
        var parser = new MergingParser(new Parser(new StringReader(yaml)));
        parser.Consume<StreamStart>();
        var documents = new List<object?>();
        while (parser.Accept<DocumentStart>(out _))
        {
            documents.Add(YamlMap.Wrap(deserializer.Deserialize(parser)));
        }

        return documents;
    }

    /// <summary>
    /// <c>kubectl kustomize</c> on a kustomization folder (Debian's kubectl bundles kustomize); null when no kubectl is
    /// installed. Throws with kubectl's message when the render fails.
    /// </summary>
    public static IReadOnlyList<YamlMap>? Render(string folder) => Rendered.GetOrAdd(folder, f => new Lazy<IReadOnlyList<YamlMap>?>(() => RenderNow(f))).Value;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<IReadOnlyList<YamlMap>?>> Rendered = new(StringComparer.Ordinal);

    private static IReadOnlyList<YamlMap>? RenderNow(string folder)
    {
        var kubectl = FindOnPath("kubectl");
        if (kubectl is null)
        {
            return null;
        }

        var start = new ProcessStartInfo(kubectl, ["kustomize", PathOf(folder)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"kubectl kustomize {folder} failed: {stderr.Result}");
        }

        return ParseDocuments(output).OfType<YamlMap>().ToList();
    }

    public const string NoKubectl = "kubectl is not installed (Debian: apt-get install kubernetes-client); the overlays are not rendered";

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LLMTune.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("LLMTune.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A YAML mapping with string keys and a few path helpers (scalars are strings, sequences lists).</summary>
internal sealed class YamlMap(Dictionary<string, object?> values)
{
    public IReadOnlyDictionary<string, object?> Values => values;

    public object? this[string key] => values.GetValueOrDefault(key);

    public bool Has(string key) => values.ContainsKey(key);

    public YamlMap? Map(string key) => this[key] as YamlMap;

    public IReadOnlyList<object?> List(string key) => this[key] as IReadOnlyList<object?> ?? [];

    public IEnumerable<YamlMap> Maps(string key) => List(key).OfType<YamlMap>();

    public string? Str(string key) => this[key] as string;

    /// <summary>A value along a path of keys, e.g. <c>At("metadata", "name")</c>.</summary>
    public object? At(params string[] path)
    {
        object? node = this;
        foreach (var key in path)
        {
            node = (node as YamlMap)?[key];
        }

        return node;
    }

    public string? StrAt(params string[] path) => At(path) as string;

    public string Kind => Str("kind") ?? "";

    public string Name => StrAt("metadata", "name") ?? "";

    public override string ToString() => $"{Kind}/{Name}";

    internal static object? Wrap(object? node) => node switch
    {
        IDictionary<object, object?> map => new YamlMap(map.ToDictionary(kv => kv.Key.ToString()!, kv => Wrap(kv.Value), StringComparer.Ordinal)),
        IList<object?> list => list.Select(Wrap).ToList(),
        _ => node,
    };
}
