using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LLMTune.Engine.Inference;

/// <summary>
/// The thread-safe registry of models loaded in this process: load and unload at run time, look up, list.
/// </summary>
public sealed class ModelManager : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LoadedModel> _models = new(StringComparer.Ordinal);
    private readonly HashSet<string> _loading = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    public ModelManager(ILoggerFactory? loggerFactory = null)
    {
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ModelManager>();
        LlamaNativeLogging.Route(loggerFactory);
    }

    /// <summary>Loads a GGUF model under <paramref name="modelId"/>; fails if the id is taken or loading.</summary>
    public async Task<LoadedModel> LoadAsync(string modelId, ModelLoadOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelId);
        ArgumentNullException.ThrowIfNull(options);
        lock (_gate)
        {
            if (_models.ContainsKey(modelId) || !_loading.Add(modelId))
            {
                throw new ModelAlreadyLoadedException(modelId);
            }
        }

        try
        {
            var model = await LoadedModel.LoadAsync(modelId, options, _logger, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _models[modelId] = model;
            }

            _logger.LogInformation("Loaded model {ModelId} from {Path}", modelId, options.Path);
            return model;
        }
        finally
        {
            lock (_gate)
            {
                _loading.Remove(modelId);
            }
        }
    }

    /// <summary>Removes the model and frees its memory; its queued and running requests fail with <see cref="ModelUnloadedException"/>.</summary>
    public async Task UnloadAsync(string modelId)
    {
        LoadedModel? model;
        lock (_gate)
        {
            if (!_models.Remove(modelId, out model))
            {
                throw new ModelNotFoundException(modelId);
            }
        }

        await model.DisposeAsync().ConfigureAwait(false);
        _logger.LogInformation("Unloaded model {ModelId}", modelId);
    }

    public bool TryGet(string modelId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LoadedModel? model)
    {
        lock (_gate)
        {
            return _models.TryGetValue(modelId, out model);
        }
    }

    public LoadedModel Get(string modelId) => TryGet(modelId, out var model) ? model : throw new ModelNotFoundException(modelId);

    public IReadOnlyList<ModelSummary> List()
    {
        lock (_gate)
        {
            return _models.Values.Select(m => m.Summary).OrderBy(s => s.Id, StringComparer.Ordinal).ToArray();
        }
    }

    public async ValueTask DisposeAsync()
    {
        LoadedModel[] models;
        lock (_gate)
        {
            models = _models.Values.ToArray();
            _models.Clear();
        }

        foreach (var model in models)
        {
            await model.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Sends llama.cpp's log output to a logger instead of stderr (warnings and errors only without one).</summary>
internal static class LlamaNativeLogging
{
    private static readonly Lock Gate = new();
    private static ILogger? _current;

    public static void Route(ILoggerFactory? loggerFactory)
    {
        lock (Gate)
        {
            if (_current is not null && loggerFactory is null)
            {
                return;
            }

            _current = loggerFactory?.CreateLogger("llama.cpp") ?? NullLogger.Instance;
            NativeLogConfig.llama_log_set(_current);
        }
    }
}
