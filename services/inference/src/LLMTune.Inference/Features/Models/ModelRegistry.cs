using System.Collections.Concurrent;

namespace LLMTune.Inference.Features.Models;

/// <summary>The models this process answers for right now; changes at run time as fine-tunes are deployed or removed.</summary>
public sealed class ModelRegistry
{
    private readonly ConcurrentDictionary<string, ServedModel> _models = new(StringComparer.Ordinal);

    public void Add(ServedModel model)
    {
        if (!_models.TryAdd(model.Id, model))
        {
            throw new InvalidOperationException($"Model '{model.Id}' is already registered.");
        }
    }

    public bool Remove(string id, out ServedModel? model) => _models.TryRemove(id, out model);

    public bool Contains(string id) => _models.ContainsKey(id);

    /// <summary>The model if it exists and the workspace may use it; a fine-tune of another workspace is "not found".</summary>
    public ServedModel? Find(string id, string workspaceId) =>
        _models.TryGetValue(id, out var model) && model.VisibleTo(workspaceId) ? model : null;

    /// <summary>A configured model by id, whoever asks (fallbacks and deployment bases).</summary>
    public ServedModel? FindShared(string id) =>
        _models.TryGetValue(id, out var model) && model.WorkspaceId is null ? model : null;

    public IReadOnlyList<ServedModel> ListFor(string workspaceId) =>
        _models.Values.Where(m => m.VisibleTo(workspaceId)).OrderBy(m => m.Id, StringComparer.Ordinal).ToList();

    public IReadOnlyList<ServedModel> All() => _models.Values.ToList();
}
