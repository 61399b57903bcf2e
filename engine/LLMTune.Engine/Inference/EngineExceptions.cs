namespace LLMTune.Engine.Inference;

/// <summary>Base of the engine's expected failures (callers map these to API errors; anything else is a bug).</summary>
public abstract class EngineException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Every sequence slot is busy and the wait queue is full; retry later (HTTP 429/503).</summary>
public sealed class EngineBusyException(string modelId, int activeSequences, int queuedRequests, int queueCapacity)
    : EngineException($"Model '{modelId}' is busy: {activeSequences} sequences running and {queuedRequests} of {queueCapacity} queue places taken.")
{
    public string ModelId { get; } = modelId;
    public int ActiveSequences { get; } = activeSequences;
    public int QueuedRequests { get; } = queuedRequests;
    public int QueueCapacity { get; } = queueCapacity;
}

/// <summary>The prompt, or the prompt plus the requested completion, does not fit the context of one sequence.</summary>
public sealed class ContextLengthExceededException(int promptTokens, int? maxTokens, int contextLength)
    : EngineException(maxTokens is null || promptTokens >= contextLength
        ? $"The prompt has {promptTokens} tokens but the context holds {contextLength} (at least one must remain for the completion)."
        : $"The prompt's {promptTokens} tokens plus maxTokens {maxTokens} exceed the context of {contextLength} tokens.")
{
    public int PromptTokens { get; } = promptTokens;
    public int? MaxTokens { get; } = maxTokens;
    public int ContextLength { get; } = contextLength;
}

public sealed class ModelNotFoundException(string modelId, string? variant = null)
    : EngineException(variant is null ? $"Model '{modelId}' is not loaded." : $"Model '{modelId}' has no variant '{variant}'.")
{
    public string ModelId { get; } = modelId;
    public string? Variant { get; } = variant;
}

public sealed class ModelAlreadyLoadedException(string modelId, string? variant = null)
    : EngineException(variant is null ? $"Model '{modelId}' is already loaded." : $"Model '{modelId}' already has a variant '{variant}'.")
{
    public string ModelId { get; } = modelId;
}

/// <summary>The model (or variant) was unloaded while the request was queued or running.</summary>
public sealed class ModelUnloadedException(string modelId)
    : EngineException($"Model '{modelId}' was unloaded before the request finished.")
{
    public string ModelId { get; } = modelId;
}

/// <summary>A model file or adapter could not be loaded, or llama.cpp failed to decode.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : EngineException(message, inner);

public sealed class InferenceFailedException(string message) : EngineException(message);

/// <summary>llama.cpp's chat-template support does not recognise a model's template.</summary>
public sealed class UnsupportedChatTemplateException(string template, Exception? inner = null)
    : EngineException($"llama.cpp does not recognise the chat template '{(template.Length > 80 ? template[..80] + "…" : template)}'.", inner);
