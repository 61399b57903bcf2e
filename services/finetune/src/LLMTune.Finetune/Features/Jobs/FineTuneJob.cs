using LLMTune.Platform.Storage;

namespace LLMTune.Finetune.Features.Jobs;

public enum JobStatus
{
    Queued,
    Validating,
    Training,
    Completed,
    Failed,
    Cancelled,
}

/// <summary>
/// A fine-tuning job: the source of truth for its state (docs/architecture.md "Where truth lives"). A worker owns it while
/// <see cref="LeaseOwner"/> is set and <see cref="LeaseExpiresAt"/> is in the future; every worker write is
/// conditional on still owning it, so a cancelled or reclaimed job is never overwritten by a stale worker.
/// </summary>
public sealed class FineTuneJob : IDocument
{
    public const string Collection = "finetune_jobs";
    public const string LoraAdapter = "lora";
    public const string FullAdapter = "full";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string BaseModel { get; set; } = "";
    public string Dataset { get; set; } = "";
    public string TrainingMethod { get; set; } = "sft";
    public const string LearningRateName = "learningRate";
    public const string EpochsName = "epochs";
    public const string BatchSizeName = "batchSize";

    /// <summary>The values trained with; those named in <see cref="AutoHyperparameters"/> are 0 until the worker chooses them.</summary>
    public double LearningRate { get; set; }
    public int Epochs { get; set; }
    public int BatchSize { get; set; }

    /// <summary>Which of learningRate, epochs and batchSize the service chooses (omitted or <c>"auto"</c> in the request).</summary>
    public List<string> AutoHyperparameters { get; set; } = [];

    /// <summary>Set once the worker has chosen the automatic values (from the validated dataset).</summary>
    public bool HyperparametersResolved { get; set; }

    /// <summary>Evaluations without improvement before training stops; 0 never stops early.</summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary><c>lora</c> (a small adapter served on the shared base) or <c>full</c> (a whole new model).</summary>
    public string Adapter { get; set; } = LoraAdapter;

    public int? LoraRank { get; set; }
    public string? WebhookUrl { get; set; }

    public JobStatus Status { get; set; }
    public double Progress { get; set; }
    public int CurrentEpoch { get; set; }
    public int Step { get; set; }
    public int TotalSteps { get; set; }
    public double? Loss { get; set; }
    public double? EvalLoss { get; set; }
    public double? TokensPerSecond { get; set; }

    /// <summary>Tokens trained on by the run that completed the job (what billing charges, from <c>TrainingCompleted</c>).</summary>
    public long TrainedTokens { get; set; }

    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }

    public string? FineTunedModel { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }

    public string? LeaseOwner { get; set; }
    public DateTime? LeaseExpiresAt { get; set; }

    /// <summary>
    /// In the priority queue: the trainer takes these before any other waiting job. Stamped at creation from the queue
    /// the workspace's plan gives (billing's admission, the request's <c>llmtune:fine-tune-priority</c> claim).
    /// </summary>
    public bool Priority { get; set; }

    /// <summary>When a worker last claimed it (for round-robin fairness between workspaces).</summary>
    public DateTime? ClaimedAt { get; set; }

    /// <summary>How many times a worker has claimed it (a resume after a crash is a second attempt).</summary>
    public int Attempts { get; set; }

    /// <summary>Eval loss of the untouched base, measured once before training.</summary>
    public double? BaselineEvalLoss { get; set; }

    /// <summary>The training step whose weights were deployed (the best evaluation's), and its eval loss.</summary>
    public int? DeployedStep { get; set; }
    public double? DeployedEvalLoss { get; set; }
    public string? DeployedCheckpointId { get; set; }

    /// <summary>Training ended before its last planned step because the eval loss stopped improving.</summary>
    public bool StoppedEarly { get; set; }

    public bool StartedAnnounced { get; set; }
    /// <summary>Where the result is, as the artifact store names it for other services (<c>file:///…</c> or <c>s3://…</c>).</summary>
    public string? ArtifactLocation { get; set; }
    public string? ArtifactKind { get; set; }

    public bool IsFinished => Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Cancelled;

    /// <summary>No worker holds the job any more (it finished, or went back to the queue).</summary>
    public void ReleaseLease()
    {
        LeaseOwner = null;
        LeaseExpiresAt = null;
    }
}

/// <summary>One entry of a job's history: a lifecycle change or a progress report.</summary>
public sealed class JobEvent : IDocument
{
    public const string Collection = "finetune_job_events";

    /// <summary>Sorts by time: <c>ftevt_</c> + ticks + a counter + random suffix.</summary>
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string JobId { get; set; } = "";
    public string WorkspaceId { get; set; } = "";

    /// <summary>
    /// <c>status</c> (lifecycle, with <see cref="Status"/>), <c>hyperparameters</c>, <c>warning</c>, <c>progress</c>,
    /// <c>evaluation</c> (per epoch), <c>checkpoint</c>, <c>model.deployed</c>.
    /// </summary>
    public string Type { get; set; } = "";
    public string Message { get; set; } = "";
    public string? Status { get; set; }
    public int? Step { get; set; }
    public int? Epoch { get; set; }
    public double? Progress { get; set; }
    public double? Loss { get; set; }
    public double? EvalLoss { get; set; }
    public double? TokensPerSecond { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>
/// The result as it stood at an evaluation that improved on the best eval loss so far (a LoRA adapter or a full
/// model), kept in the artifact store for download; the job's best one is what deploys.
/// </summary>
public sealed class JobCheckpoint : IDocument
{
    public const string Collection = "finetune_job_checkpoints";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string JobId { get; set; } = "";
    public string WorkspaceId { get; set; } = "";

    /// <summary>The claim of the job that trained it (a resumed job has several).</summary>
    public int Attempt { get; set; }
    public int Step { get; set; }
    public int Epoch { get; set; }
    public double Loss { get; set; }
    public double EvalLoss { get; set; }

    /// <summary><c>lora</c> or <c>full</c>.</summary>
    public string Kind { get; set; } = "";
    public string ArtifactKey { get; set; } = "";
    public long Bytes { get; set; }
    public DateTime CreatedAt { get; set; }
}
