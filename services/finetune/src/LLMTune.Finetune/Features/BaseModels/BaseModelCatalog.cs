using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.BaseModels;

/// <summary>A base model this server can fine-tune: its id and its GGUF file on this machine.</summary>
public sealed record TrainableBaseModel(string Id, string Path);

/// <summary>
/// The one resolution of a base model id to its file (<c>Finetune:BaseModels</c>): the API checks a new job's model
/// with it and the worker resolves the model of the job it runs with it.
/// </summary>
public sealed class BaseModelCatalog(IOptions<FinetuneOptions> options)
{
    /// <summary>The enabled, configured model with this id, or null; relative paths resolve as the inference service resolves them.</summary>
    public TrainableBaseModel? Find(string modelId) =>
        options.Value.BaseModels.TryGetValue(modelId, out var model) && model.Enabled && !string.IsNullOrWhiteSpace(model.Path)
            ? new TrainableBaseModel(modelId, ModelPaths.Resolve(model.Path))
            : null;

    public IEnumerable<string> TrainableIds => options.Value.BaseModels.Where(m => m.Value.Enabled).Select(m => m.Key);
}
