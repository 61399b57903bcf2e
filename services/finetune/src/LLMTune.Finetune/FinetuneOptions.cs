using System.ComponentModel.DataAnnotations;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Training;
using LLMTune.Platform.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune;

/// <summary>The <c>Finetune</c> section: storage, trainable base models, limits, the worker and remote dataset sources.</summary>
public sealed class FinetuneOptions
{
    public const string Section = "Finetune";

    /// <summary>The bundled model's id and file (relative paths resolve against the executable's folder, as the inference service does).</summary>
    public const string BundledModelId = "llmtune/tiny";
    public const string BundledModelPath = BundledModel.RelativePath;

    /// <summary>
    /// Local scratch folder where a worker trains (checkpoints, the result before it goes to the artifact store).
    /// Uploads, dataset snapshots, mirrored checkpoints and results live in the artifact store (<c>Artifacts:*</c>).
    /// </summary>
    [Required]
    public string WorkPath { get; set; } = "./data/finetune-work";

    /// <summary>Largest uploaded file, in bytes; larger uploads get 413.</summary>
    [Range(1, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 100 * 1024 * 1024;

    /// <summary>Base models that can be fine-tuned, keyed by model id (e.g. <c>Finetune:BaseModels:llmtune/tiny:Path</c>).</summary>
    public Dictionary<string, BaseModelOptions> BaseModels { get; set; } = new(StringComparer.Ordinal)
    {
        [BundledModelId] = new BaseModelOptions { Path = BundledModelPath },
    };

    /// <summary>Share of the examples held out to measure <c>evalLoss</c> (at least one when there are two or more).</summary>
    [Range(0.0, 0.5)]
    public double EvalFraction { get; set; } = 0.1;

    [Required]
    public HyperparameterLimits Limits { get; set; } = new();

    [Required]
    public AutoHyperparameters Auto { get; set; } = new();

    [Required]
    public TrainingSettings Training { get; set; } = new();

    [Required]
    public WorkerOptions Worker { get; set; } = new();

    [Required]
    public RemoteDatasetOptions RemoteDatasets { get; set; } = new();

    /// <summary>How <c>s3://</c> datasets are read (AWS, or an S3-compatible store with <c>ServiceUrl</c> + <c>ForcePathStyle</c>).</summary>
    [Required]
    public S3ConnectionOptions S3 { get; set; } = new();

    [Required]
    public GcsSourceOptions Gcs { get; set; } = new();
}

public static class ModelPaths
{
    /// <summary>Absolute paths stay; relative ones resolve against the executable's folder (where the bundled model is copied).</summary>
    public static string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));
}

public sealed class BaseModelOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>A local llama-architecture GGUF file.</summary>
    public string? Path { get; set; }
}

public sealed class HyperparameterLimits
{
    public float MinLearningRate { get; set; } = 1e-7f;
    public float MaxLearningRate { get; set; } = 0.1f;
    public int MaxEpochs { get; set; } = 100;
    public int MaxBatchSize { get; set; } = 256;
    public int MaxLoraRank { get; set; } = 128;
}

/// <summary>How hyperparameters that a job omits (or sets to <c>"auto"</c>) are chosen from the dataset, the model and the adapter.</summary>
public sealed class AutoHyperparameters
{
    /// <summary>Automatic epochs give at least this many optimiser steps (a small dataset is seen often enough to be learned).</summary>
    public int MinimumSteps { get; set; } = 150;

    /// <summary>Explicit values that give fewer optimiser steps than this still run, with a warning in the job's events.</summary>
    public int WarnBelowSteps { get; set; } = 50;

    /// <summary>Automatic epochs stop here (early stopping ends most runs sooner).</summary>
    public int MaxEpochs { get; set; } = 100;

    /// <summary>Automatic batches hold about this share of the packed rows, between 1 and <see cref="MaxBatchSize"/> (rounded down to a power of two).</summary>
    public double BatchFraction { get; set; } = 0.1;

    public int MaxBatchSize { get; set; } = 8;

    /// <summary>Learning rate of a full fine-tune at batch size 8 (scaled by the square root of the batch size).</summary>
    public float FullLearningRate { get; set; } = 1e-3f;

    /// <summary>Learning rate of a LoRA fine-tune at batch size 8 and alpha/rank = 2 (scaled inversely with alpha/rank).</summary>
    public float LoraLearningRate { get; set; } = 1e-2f;
}

public sealed class TrainingSettings
{
    /// <summary>
    /// The adapter of jobs that do not choose one (<c>hyperparameters.adapter</c>): Lora trains a small adapter served
    /// on top of the shared base; Full writes a whole new model.
    /// </summary>
    public TrainingMode Mode { get; set; } = TrainingMode.Lora;

    /// <summary>The LoRA rank of jobs that do not choose one (<c>hyperparameters.loraRank</c>).</summary>
    public int LoraRank { get; set; } = 8;
    public float LoraAlpha { get; set; } = 16;

    /// <summary>Tokens per training row; longer examples are truncated.</summary>
    public int SequenceLength { get; set; } = 128;

    /// <summary>ggml threads per job; null divides the cores between the worker's concurrent jobs.</summary>
    public int? Threads { get; set; }

    /// <summary>Optimiser steps between checkpoints (what a restarted worker resumes from); 0 disables them.</summary>
    public int CheckpointInterval { get; set; } = 10;

    /// <summary>
    /// Jobs that do not choose <c>hyperparameters.earlyStoppingPatience</c> stop after this many evaluations (one per
    /// epoch) without a lower eval loss; 0 never stops early. The best evaluation's weights are what deploys either way.
    /// </summary>
    public int EarlyStoppingPatience { get; set; } = 5;

    /// <summary>Measure the eval loss of the untouched base before the first step, so the job shows where it started.</summary>
    public bool BaselineEvaluation { get; set; } = true;
}

public sealed class WorkerOptions
{
    /// <summary>False runs the API only (e.g. when training runs elsewhere).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Jobs this process trains at the same time.</summary>
    public int Concurrency { get; set; } = 1;

    /// <summary>How long a claim holds without renewal; a job whose worker died is picked up again after it expires.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often an idle worker looks for queued work (new jobs in this process wake it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often progress is written to the job and announced (eval results are written at once).</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);
}

public sealed class RemoteDatasetOptions
{
    /// <summary>Largest remote dataset, in bytes.</summary>
    public long MaxBytes { get; set; } = 100 * 1024 * 1024;

    /// <summary>Whole-download time limit.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>A PEM file of extra trusted root certificates for https datasets (a private CA).</summary>
    public string? TrustedRootCertificatesPath { get; set; }

    public int MaxRedirects { get; set; } = 3;
}

public sealed class GcsSourceOptions
{
    /// <summary>A service-account JSON key file; when absent Google's application default credentials are used.</summary>
    public string? CredentialsPath { get; set; }

    /// <summary>Reads public objects without credentials.</summary>
    public bool Anonymous { get; set; }

    /// <summary>
    /// A GCS-compatible endpoint, e.g. an emulator such as fake-gcs-server or a private gateway; null uses
    /// storage.googleapis.com. The JSON API is expected under <c>{ServiceUrl}/storage/v1/</c>, as on Google's endpoint.
    /// </summary>
    public string? ServiceUrl { get; set; }
}

/// <summary>Checks the settings that annotations cannot express, naming the setting.</summary>
internal sealed class FinetuneOptionsValidator : IValidateOptions<FinetuneOptions>
{
    public ValidateOptionsResult Validate(string? name, FinetuneOptions o)
    {
        var problems = new List<string>();
        var l = o.Limits;
        if (!(l.MinLearningRate > 0 && l.MaxLearningRate >= l.MinLearningRate))
        {
            problems.Add("Finetune:Limits: 0 < MinLearningRate <= MaxLearningRate.");
        }

        if (l.MaxEpochs < 1 || l.MaxBatchSize < 1 || l.MaxLoraRank < 1)
        {
            problems.Add("Finetune:Limits: MaxEpochs, MaxBatchSize and MaxLoraRank must be at least 1.");
        }

        var a = o.Auto;
        if (a.FullLearningRate < l.MinLearningRate || a.FullLearningRate > l.MaxLearningRate || a.LoraLearningRate < l.MinLearningRate || a.LoraLearningRate > l.MaxLearningRate
            || a.MaxEpochs < 1 || a.MaxEpochs > l.MaxEpochs || a.MaxBatchSize < 1 || a.MaxBatchSize > l.MaxBatchSize
            || a.MinimumSteps < 1 || a.WarnBelowSteps < 0 || !(a.BatchFraction is > 0 and <= 1))
        {
            problems.Add("Finetune:Auto: learning rates, MaxEpochs and MaxBatchSize within Finetune:Limits; MinimumSteps >= 1; WarnBelowSteps >= 0; 0 < BatchFraction <= 1.");
        }

        var t = o.Training;
        if (t.LoraRank > l.MaxLoraRank)
        {
            problems.Add("Finetune:Training:LoraRank must not exceed Finetune:Limits:MaxLoraRank.");
        }

        if (t.LoraRank < 1 || t.LoraAlpha <= 0 || t.SequenceLength < 8 || t.Threads is < 1 || t.CheckpointInterval < 0 || t.EarlyStoppingPatience < 0)
        {
            problems.Add("Finetune:Training: LoraRank >= 1, LoraAlpha > 0, SequenceLength >= 8, Threads >= 1, CheckpointInterval >= 0, EarlyStoppingPatience >= 0.");
        }

        var w = o.Worker;
        if (w.Concurrency < 1 || w.LeaseDuration < TimeSpan.FromSeconds(1) || w.PollInterval <= TimeSpan.Zero || w.ProgressInterval <= TimeSpan.Zero)
        {
            problems.Add("Finetune:Worker: Concurrency >= 1, LeaseDuration >= 1 s, PollInterval and ProgressInterval positive.");
        }

        var r = o.RemoteDatasets;
        if (r.MaxBytes < 1 || r.Timeout <= TimeSpan.Zero || r.MaxRedirects < 0)
        {
            problems.Add("Finetune:RemoteDatasets: MaxBytes >= 1, Timeout positive, MaxRedirects >= 0.");
        }


        // Blank counts as unset (null uses Google's endpoint), as an empty environment variable would give.
        if (o.Gcs.ServiceUrl is { } gcsUrl && !string.IsNullOrWhiteSpace(gcsUrl)
            && !(Uri.TryCreate(gcsUrl, UriKind.Absolute, out var gcsUri) && (gcsUri.Scheme == Uri.UriSchemeHttp || gcsUri.Scheme == Uri.UriSchemeHttps)
                && string.IsNullOrEmpty(gcsUri.Query) && string.IsNullOrEmpty(gcsUri.Fragment)))
        {
            problems.Add($"Finetune:Gcs:ServiceUrl: '{gcsUrl}' must be an absolute http or https URL without query or fragment (e.g. http://localhost:4443).");
        }

        problems.AddRange(o.S3.Problems("Finetune:S3"));

        foreach (var (id, model) in o.BaseModels.Where(m => m.Value.Enabled))
        {
            if (string.IsNullOrWhiteSpace(model.Path))
            {
                problems.Add($"Finetune:BaseModels:{id}:Path must name a GGUF file.");
            }
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
