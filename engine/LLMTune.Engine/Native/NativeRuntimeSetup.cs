using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LLMTune.Engine.Native;

/// <summary>
/// Runs when the engine assembly loads, before any engine code can load llama.cpp/ggml: installs the engine's
/// native resolver and tunes OpenMP waiting.
/// </summary>
/// <remarks>
/// The Linux ggml build links libgomp, so ggml's worker threads meet at an OpenMP barrier after every graph
/// operation. libgomp's default is to busy-wait there for a long time; when the machine has more runnable
/// threads than cores (other services, other training jobs) a waiting thread burns the time slice its peer
/// needs, and measured 2-thread training fell from ~1,500 to ~270 tokens/s. A short spin followed by a
/// sleep keeps the idle-machine speed and removes that collapse. libgomp reads the setting once, when it is
/// loaded, so it must be in the native environment before the first ggml call; an explicit
/// <c>GOMP_SPINCOUNT</c> or <c>OMP_WAIT_POLICY</c> set by the operator is left alone.
/// </remarks>
internal static class NativeRuntimeSetup
{
    internal const string SpinCount = "2000";

#pragma warning disable CA2255 // The native environment must be set before any native library loads; a module initializer is the only hook that early.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        NativeLibraryResolver.EnsureRegistered();
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is null && Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
        {
            // .NET keeps its own copy of the environment; libgomp reads the C library's.
            _ = setenv("GOMP_SPINCOUNT", SpinCount, 0);
        }
    }

    [DllImport("libc.so.6", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
