using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Inference;

/// <summary>
/// Checks a LoRA adapter against its base model before llama.cpp sees it: llama.cpp only logs a shape mismatch
/// and hands back a null adapter, which would fail later and less clearly.
/// </summary>
internal static class LoraAdapterValidator
{
    public static void Validate(string adapterPath, GgufFile model)
    {
        GgufFile adapter;
        try
        {
            adapter = GgufFile.Read(adapterPath);
        }
        catch (GgufFormatException e)
        {
            throw new ModelLoadException($"LoRA adapter '{adapterPath}' is not a GGUF file: {e.Message}", e);
        }

        if (adapter.Metadata.GetStringOrDefault("general.type") != "adapter" || adapter.Metadata.GetStringOrDefault("adapter.type") != "lora")
        {
            throw new ModelLoadException($"'{adapterPath}' is not a LoRA adapter (general.type = adapter, adapter.type = lora).");
        }

        if (adapter.Architecture != model.Architecture)
        {
            throw new ModelLoadException($"LoRA adapter '{adapterPath}' is for '{adapter.Architecture}', the model is '{model.Architecture}'.");
        }

        var tensors = adapter.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var a in adapter.Tensors.Where(t => t.Name.EndsWith(".lora_a", StringComparison.Ordinal)))
        {
            var baseName = a.Name[..^".lora_a".Length];
            if (!tensors.TryGetValue(baseName + ".lora_b", out var b))
            {
                throw new ModelLoadException($"LoRA adapter '{adapterPath}' has {a.Name} without {baseName}.lora_b.");
            }

            var target = model.FindTensor(baseName)
                ?? throw new ModelLoadException($"LoRA adapter '{adapterPath}' targets '{baseName}', which the model does not have.");
            // W is {in, out}; A must be {in, r} and B {r, out}.
            if (a.Shape.Length != 2 || b.Shape.Length != 2 || target.Shape.Length < 2
                || a.Shape[0] != target.Shape[0] || b.Shape[1] != target.Shape[1] || a.Shape[1] != b.Shape[0])
            {
                throw new ModelLoadException(
                    $"LoRA adapter '{adapterPath}': {baseName} is {Format(target.Shape)} but lora_a is {Format(a.Shape)} and lora_b {Format(b.Shape)} (need {{in, r}} and {{r, out}}).");
            }
        }
    }

    private static string Format(long[] shape) => "{" + string.Join(", ", shape) + "}";
}
