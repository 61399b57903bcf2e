using System.Reflection;
using System.Runtime.InteropServices;

namespace LLMTune.Engine.Native;

/// <summary>
/// The single place where the engine resolves its own native imports. Every <c>DllImport</c> in this
/// assembly that names a ggml library is bound to the very file LLamaSharp already loaded, so the process
/// holds one copy of ggml (two copies would each keep their own backend registry and thread pools).
/// </summary>
internal static class NativeLibraryResolver
{
    /// <summary>Library names used by the engine's imports (no prefix or suffix; the resolver adds them).</summary>
    internal const string GgmlBase = "ggml-base";
    internal const string GgmlCpu = "ggml-cpu";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, nint> Handles = new(StringComparer.Ordinal);
    private static bool _registered;
    private static string? _nativeDirectory;

    /// <summary>Installs the resolver for the engine assembly; safe to call any number of times from any thread.</summary>
    internal static void EnsureRegistered()
    {
        lock (Gate)
        {
            if (_registered)
            {
                return;
            }

            try
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // Someone already installed a resolver for this assembly; the runtime allows only one.
                // That can only be this class (it is the single place), so the work is done.
            }

            _registered = true;
        }
    }

    /// <summary>The folder holding the ggml libraries LLamaSharp loaded (found once, then cached).</summary>
    internal static string NativeDirectory
    {
        get
        {
            lock (Gate)
            {
                return _nativeDirectory ??= LocateNativeDirectory();
            }
        }
    }

    /// <summary>Address of an exported symbol (for passing native functions as callbacks).</summary>
    internal static nint GetExport(string logicalLibrary, string symbol) =>
        NativeLibrary.GetExport(LoadLibrary(logicalLibrary), symbol);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var logical = Normalise(libraryName);
        return logical is GgmlBase or GgmlCpu
            ? LoadLibrary(logical)
            : nint.Zero; // not ours: let the runtime's default probing handle it
    }

    private static nint LoadLibrary(string logical)
    {
        lock (Gate)
        {
            if (Handles.TryGetValue(logical, out var cached))
            {
                return cached;
            }

            _nativeDirectory ??= LocateNativeDirectory();
            var path = Path.Combine(_nativeDirectory, PlatformFileName(logical));
            var handle = NativeLibrary.Load(path);
            Handles[logical] = handle;
            return handle;
        }
    }

    private static string Normalise(string name)
    {
        var file = Path.GetFileName(name);
        if (file.StartsWith("lib", StringComparison.Ordinal))
        {
            file = file[3..];
        }

        foreach (var suffix in new[] { ".so", ".dylib", ".dll" })
        {
            if (file.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                file = file[..^suffix.Length];
            }
        }

        return file;
    }

    private static string PlatformFileName(string logical) =>
        OperatingSystem.IsWindows() ? logical + ".dll"
        : OperatingSystem.IsMacOS() ? "lib" + logical + ".dylib"
        : "lib" + logical + ".so";

    private static string LocateNativeDirectory()
    {
        // Make LLamaSharp pick and load its native build first (it chooses the CPU-feature variant), then
        // follow it: the folder of the ggml-base it mapped is the folder we must use.
        ForceLLamaSharpLoad();

        var mapped = FindMappedLibraryDirectory(PlatformFileName(GgmlBase));
        if (mapped is not null)
        {
            return mapped;
        }

        // Not Linux (no /proc/self/maps) or LLamaSharp failed to load: probe the package layout ourselves,
        // best CPU variant first, the same order LLamaSharp uses.
        foreach (var candidate in CandidateDirectories())
        {
            if (File.Exists(Path.Combine(candidate, PlatformFileName(GgmlBase))))
            {
                return candidate;
            }
        }

        throw new DllNotFoundException(
            $"Could not find the ggml native libraries ({PlatformFileName(GgmlBase)}) that LLamaSharp.Backend.Cpu ships.");
    }

    private static void ForceLLamaSharpLoad()
    {
        try
        {
            _ = LLama.Native.NativeApi.llama_max_devices();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or LLama.Exceptions.RuntimeError)
        {
            // Fall back to probing the package layout below.
        }
    }

    private static string? FindMappedLibraryDirectory(string fileName)
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return null;
        }

        foreach (var line in File.ReadLines(maps))
        {
            var slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                continue;
            }

            var path = line[slash..].Trim();
            if (string.Equals(Path.GetFileName(path), fileName, StringComparison.Ordinal))
            {
                return Path.GetDirectoryName(path);
            }
        }

        return null;
    }

    private static IEnumerable<string> CandidateDirectories()
    {
        var rid = OperatingSystem.IsWindows() ? "win-x64"
            : OperatingSystem.IsMacOS() ? (RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "osx-arm64" : "osx-x64")
            : RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        var variants = new List<string>();
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            variants.Add("avx512");
        }

        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            variants.Add("avx2");
        }

        if (System.Runtime.Intrinsics.X86.Avx.IsSupported)
        {
            variants.Add("avx");
        }

        variants.Add("noavx");
        variants.Add(string.Empty);

        var roots = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(LLama.Native.NativeApi).Assembly.Location) ?? string.Empty }
            .Where(r => r.Length > 0)
            .Distinct(StringComparer.Ordinal);
        foreach (var root in roots)
        {
            foreach (var variant in variants)
            {
                yield return Path.Combine(root, "runtimes", rid, "native", variant);
            }

            yield return root;
        }
    }
}
