namespace LLMTune.Finetune.Features.Artifacts;

/// <summary>The artifact-store keys the fine-tune service uses, in one place.</summary>
public static class ArtifactKeys
{
    public static string File(string fileId) => $"files/{fileId}";

    public static string JobPrefix(string jobId) => $"jobs/{jobId}/";

    public static string DatasetSnapshot(string jobId) => $"jobs/{jobId}/dataset.jsonl";

    /// <summary>The latest training checkpoint, mirrored from the worker's disk so any worker can resume the job.</summary>
    public static string Checkpoint(string jobId) => $"jobs/{jobId}/checkpoint.gguf";

    /// <summary>The trained result of one attempt (one claim of the job): a LoRA adapter or a full model.</summary>
    public static string Output(string jobId, int attempt, bool lora) => $"jobs/{jobId}/attempt-{attempt}/{(lora ? "adapter.gguf" : "model.gguf")}";

    /// <summary>The result as it stood at a step with a new best eval loss, kept for download.</summary>
    public static string Snapshot(string jobId, int attempt, int step, bool lora) =>
        $"jobs/{jobId}/attempt-{attempt}/checkpoints/step-{step:D6}-{(lora ? "adapter.gguf" : "model.gguf")}";
}
