using System.Text.Json;
using System.Text.Json.Serialization;

namespace LLMTune.Finetune.Features.Jobs;

/// <summary>
/// The seed's three hyperparameters, each a number or <c>"auto"</c> (omitted means <c>"auto"</c>), plus LLMTune's
/// optional <c>adapter</c> (<c>lora</c> or <c>full</c>), <c>loraRank</c> and <c>earlyStoppingPatience</c>.
/// </summary>
public sealed record HyperparametersRequest(JsonElement? LearningRate, JsonElement? Epochs, JsonElement? BatchSize, string? Adapter = null, int? LoraRank = null, int? EarlyStoppingPatience = null);

/// <summary>The body of <c>POST /v1/fine-tune</c>: the seed's fields.</summary>
public sealed record CreateJobRequest(string? BaseModel, string? Dataset, string? TrainingMethod, HyperparametersRequest? Hyperparameters, string? WebhookUrl);

public sealed record EpochsView(int Current, int Total);

public sealed record MetricsView(double? Loss, double? EvalLoss, double? TokensPerSecond)
{
    /// <summary>Losses to 4 places and speed to 1, the same on the job and on its events, so the two agree.</summary>
    public static MetricsView Rounded(double? loss, double? evalLoss, double? tokensPerSecond) =>
        new(Round(loss), Round(evalLoss), tokensPerSecond is { } t ? Math.Round(t, 1) : null);

    public static double? Round(double? value) => value is { } v ? Math.Round(v, 4) : null;
}

public sealed record JobErrorView(string Code, string Message);

/// <summary>The values trained with (<c>"auto"</c> until the worker has chosen them) and which of them were chosen automatically.</summary>
public sealed record HyperparametersView(
    object LearningRate,
    object Epochs,
    object BatchSize,
    string Adapter,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? LoraRank,
    int EarlyStoppingPatience,
    IReadOnlyList<string> Auto)
{
    public static HyperparametersView From(FineTuneJob j)
    {
        object Value(string name, object value) => !j.HyperparametersResolved && j.AutoHyperparameters.Contains(name) ? "auto" : value;
        return new HyperparametersView(
            Value(FineTuneJob.LearningRateName, j.LearningRate),
            Value(FineTuneJob.EpochsName, j.Epochs),
            Value(FineTuneJob.BatchSizeName, j.BatchSize),
            j.Adapter,
            j.Adapter == FineTuneJob.LoraAdapter ? j.LoraRank : null,
            j.EarlyStoppingPatience,
            j.AutoHyperparameters);
    }
}

/// <summary>The training step whose weights were deployed (the best evaluation's) and its eval loss.</summary>
public sealed record DeployedCheckpointView(int Step, double? EvalLoss, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? CheckpointId);

/// <summary>The seed's job shape, plus what the job was asked for (baseModel, hyperparameters), updatedAt, and finishedAt / fineTunedModel / error when they apply.</summary>
public sealed record JobView(
    string Id,
    string Status,
    double Progress,
    EpochsView Epochs,
    MetricsView Metrics,
    DateTime CreatedAt,
    string BaseModel,
    HyperparametersView Hyperparameters,
    DateTime UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTime? FinishedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? FineTunedModel,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JobErrorView? Error,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DeployedCheckpointView? DeployedCheckpoint,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool StoppedEarly)
{
    public static string StatusName(JobStatus status) => status.ToString().ToLowerInvariant();

    public static JobView From(FineTuneJob j) => new(
        j.Id,
        StatusName(j.Status),
        Math.Round(j.Progress, 1),
        new EpochsView(j.CurrentEpoch, j.Epochs),
        MetricsView.Rounded(j.Loss, j.EvalLoss, j.TokensPerSecond),
        j.CreatedAt,
        j.BaseModel,
        HyperparametersView.From(j),
        j.UpdatedAt,
        j.FinishedAt,
        j.FineTunedModel,
        j.ErrorCode is { } code ? new JobErrorView(code, j.ErrorMessage ?? code) : null,
        j.DeployedStep is { } step ? new DeployedCheckpointView(step, Round(j.DeployedEvalLoss), j.DeployedCheckpointId) : null,
        j.StoppedEarly);

    private static double? Round(double? value) => MetricsView.Round(value);
}

public sealed record JobEventView(
    string Id,
    string Type,
    string Message,
    DateTime CreatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Step,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Epoch,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Progress,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] MetricsView? Metrics)
{
    public static JobEventView From(JobEvent e) => new(
        e.Id, e.Type, e.Message, e.CreatedAt, e.Status, e.Step, e.Epoch, e.Progress,
        e.Loss is null && e.EvalLoss is null && e.TokensPerSecond is null ? null : MetricsView.Rounded(e.Loss, e.EvalLoss, e.TokensPerSecond));
}

/// <summary>A downloadable checkpoint of a job: the result as it stood at an evaluation with a new best eval loss.</summary>
public sealed record CheckpointView(string Id, string Object, int Step, int Epoch, double Loss, double EvalLoss, string Kind, long Bytes, bool Deployed, DateTime CreatedAt, string DownloadUrl)
{
    public static CheckpointView From(JobCheckpoint c, FineTuneJob job) => new(
        c.Id, "fine_tune.checkpoint", c.Step, c.Epoch, Math.Round(c.Loss, 4), Math.Round(c.EvalLoss, 4), c.Kind, c.Bytes, c.Id == job.DeployedCheckpointId, c.CreatedAt,
        $"/v1/fine-tune/{job.Id}/checkpoints/{c.Id}/content");
}
