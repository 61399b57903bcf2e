using System.Text.Json.Serialization;

namespace LLMTune.Finetune.Features.Jobs;

/// <summary>The seed's three hyperparameters, plus LLMTune's optional <c>adapter</c> (<c>lora</c> or <c>full</c>) and <c>loraRank</c>.</summary>
public sealed record HyperparametersRequest(double? LearningRate, int? Epochs, int? BatchSize, string? Adapter = null, int? LoraRank = null);

/// <summary>The body of <c>POST /v1/fine-tune</c>: the seed's fields.</summary>
public sealed record CreateJobRequest(string? BaseModel, string? Dataset, string? TrainingMethod, HyperparametersRequest? Hyperparameters, string? WebhookUrl);

public sealed record EpochsView(int Current, int Total);

public sealed record MetricsView(double? Loss, double? EvalLoss, double? TokensPerSecond);

public sealed record JobErrorView(string Code, string Message);

public sealed record HyperparametersView(
    double LearningRate,
    int Epochs,
    int BatchSize,
    string Adapter,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? LoraRank);

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
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JobErrorView? Error)
{
    public static string StatusName(JobStatus status) => status.ToString().ToLowerInvariant();

    public static JobView From(FineTuneJob j) => new(
        j.Id,
        StatusName(j.Status),
        Math.Round(j.Progress, 1),
        new EpochsView(j.CurrentEpoch, j.Epochs),
        new MetricsView(Round(j.Loss), Round(j.EvalLoss), j.TokensPerSecond is { } t ? Math.Round(t, 1) : null),
        j.CreatedAt,
        j.BaseModel,
        new HyperparametersView(j.LearningRate, j.Epochs, j.BatchSize, j.Adapter, j.Adapter == FineTuneJob.LoraAdapter ? j.LoraRank : null),
        j.UpdatedAt,
        j.FinishedAt,
        j.FineTunedModel,
        j.ErrorCode is { } code ? new JobErrorView(code, j.ErrorMessage ?? code) : null);

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 4) : null;
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
        e.Loss is null && e.EvalLoss is null && e.TokensPerSecond is null ? null : new MetricsView(e.Loss, e.EvalLoss, e.TokensPerSecond));
}
