using System.Text.Json;
using LLMTune.Engine.Training;
using LLMTune.Finetune.Features.BaseModels;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Features.Files;
using LLMTune.Finetune.Features.Training;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Jobs;

/// <summary>Creates and cancels jobs: validates the request, records the job, announces it, wakes the worker.</summary>
public sealed class JobService(
    JobStore jobs,
    JobRuntime runtime,
    FileStore files,
    BaseModelCatalog baseModels,
    SafeHttpDownloader https,
    JobLifecycle lifecycle,
    TimeProvider time,
    IOptions<FinetuneOptions> options,
    IOptions<ArtifactStorageOptions> artifactStorage,
    IOptions<OutboundOptions> outbound,
    ILogger<JobService> logger)
{
    public const string SupportedMethod = "sft";

    /// <param name="priority">The job goes in the priority queue (its workspace's plan gives it one).</param>
    public async Task<FineTuneJob> CreateAsync(string workspaceId, CreateJobRequest request, CancellationToken ct, bool priority = false)
    {
        var settings = options.Value;
        var limits = settings.Limits;
        if (string.IsNullOrWhiteSpace(request.BaseModel))
        {
            throw BadRequest("baseModel is required.", "baseModel");
        }

        var method = request.TrainingMethod?.Trim() ?? SupportedMethod;
        if (!string.Equals(method, SupportedMethod, StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "unsupported_training_method",
                $"trainingMethod '{method}' is not supported; use \"{SupportedMethod}\" (supervised fine-tuning).", "trainingMethod");
        }

        if (string.IsNullOrWhiteSpace(request.Dataset))
        {
            throw BadRequest("dataset is required.", "dataset");
        }

        var dataset = DatasetReference.TryParse(request.Dataset, out var datasetProblem) ?? throw BadRequest(datasetProblem!, "dataset");
        var hyper = request.Hyperparameters;
        var auto = new List<string>();
        var learningRate = Numeric(hyper?.LearningRate, FineTuneJob.LearningRateName, integer: false, auto);
        if (learningRate is { } lr && (!double.IsFinite(lr) || lr < limits.MinLearningRate || lr > limits.MaxLearningRate))
        {
            throw BadRequest($"hyperparameters.learningRate must be between {limits.MinLearningRate:G} and {limits.MaxLearningRate:G}, or \"auto\".", "hyperparameters.learningRate");
        }

        var epochs = Numeric(hyper?.Epochs, FineTuneJob.EpochsName, integer: true, auto);
        if (epochs is < 1 || epochs > limits.MaxEpochs)
        {
            throw BadRequest($"hyperparameters.epochs must be between 1 and {limits.MaxEpochs}, or \"auto\".", "hyperparameters.epochs");
        }

        var batchSize = Numeric(hyper?.BatchSize, FineTuneJob.BatchSizeName, integer: true, auto);
        if (batchSize is < 1 || batchSize > limits.MaxBatchSize)
        {
            throw BadRequest($"hyperparameters.batchSize must be between 1 and {limits.MaxBatchSize}, or \"auto\".", "hyperparameters.batchSize");
        }

        var patience = hyper?.EarlyStoppingPatience ?? settings.Training.EarlyStoppingPatience;
        if (patience < 0 || patience > limits.MaxEpochs)
        {
            throw BadRequest($"hyperparameters.earlyStoppingPatience must be between 0 (never stop early) and {limits.MaxEpochs}.", "hyperparameters.earlyStoppingPatience");
        }

        var adapter = hyper?.Adapter?.Trim().ToLowerInvariant() ?? (settings.Training.Mode == TrainingMode.Full ? FineTuneJob.FullAdapter : FineTuneJob.LoraAdapter);
        if (adapter is not (FineTuneJob.LoraAdapter or FineTuneJob.FullAdapter))
        {
            throw BadRequest("hyperparameters.adapter must be \"lora\" or \"full\".", "hyperparameters.adapter");
        }

        if (hyper?.LoraRank is not null && adapter != FineTuneJob.LoraAdapter)
        {
            throw BadRequest("hyperparameters.loraRank applies only to adapter \"lora\".", "hyperparameters.loraRank");
        }

        var loraRank = hyper?.LoraRank ?? settings.Training.LoraRank;
        if (loraRank < 1 || loraRank > limits.MaxLoraRank)
        {
            throw BadRequest($"hyperparameters.loraRank must be between 1 and {limits.MaxLoraRank}.", "hyperparameters.loraRank");
        }

        var webhook = ValidateWebhook(request.WebhookUrl, outbound.Value.AllowList());

        if (baseModels.Find(request.BaseModel) is null)
        {
            throw new ApiException(StatusCodes.Status404NotFound, "model_not_found",
                $"The base model '{request.BaseModel}' does not exist or cannot be fine-tuned here. Trainable models: {string.Join(", ", baseModels.TrainableIds)}.",
                "baseModel");
        }

        switch (dataset.Kind)
        {
            case DatasetKind.UploadedFile when await files.FindAsync(workspaceId, dataset.Location, ct) is null:
                throw new ApiException(StatusCodes.Status404NotFound, "file_not_found", $"No file '{dataset.Location}' in this workspace.", "dataset");
            case DatasetKind.S3 when artifactStorage.Value is { Provider: ArtifactProvider.S3 } own && own.S3.Bucket == dataset.Bucket:
                // The service's own credentials can read every workspace's files there; tenants use their own buckets.
                throw new ApiException(StatusCodes.Status400BadRequest, "dataset_not_allowed",
                    $"s3://{dataset.Bucket} is this service's artifact bucket; upload the data with POST /v1/files or use a bucket of your own.", "dataset");
            case DatasetKind.Https:
                try
                {
                    await https.CheckAllowedAsync(dataset.Url!, ct);
                }
                catch (DatasetException refused)
                {
                    throw new ApiException(StatusCodes.Status400BadRequest, refused.Code, refused.Message, "dataset");
                }

                break;
        }

        var now = time.GetUtcNow().UtcDateTime;
        var job = new FineTuneJob
        {
            Id = RequestIdMiddleware.NewId("job"),
            WorkspaceId = workspaceId,
            BaseModel = request.BaseModel,
            Dataset = request.Dataset.Trim(),
            TrainingMethod = SupportedMethod,
            LearningRate = learningRate ?? 0,
            Epochs = (int)(epochs ?? 0),
            BatchSize = (int)(batchSize ?? 0),
            AutoHyperparameters = auto,
            HyperparametersResolved = auto.Count == 0,
            EarlyStoppingPatience = patience,
            Adapter = adapter,
            LoraRank = adapter == FineTuneJob.LoraAdapter ? loraRank : null,
            WebhookUrl = webhook,
            Priority = priority,
            Status = JobStatus.Queued,
            CreatedAt = now,
            UpdatedAt = now,
        };
        await lifecycle.QueuedAsync(job, ct);
        logger.LogInformation("Queued fine-tune job {JobId} of {BaseModel} in workspace {WorkspaceId}", job.Id, job.BaseModel, workspaceId);
        runtime.Wake();
        return job;
    }

    /// <summary>Cancels a queued or running job; the worker running it (here or elsewhere) stops and discards its work.</summary>
    public async Task<FineTuneJob> CancelAsync(string workspaceId, string jobId, CancellationToken ct)
    {
        var cancelled = await jobs.UpdateAsync(jobId, j => j.WorkspaceId == workspaceId && !j.IsFinished, j =>
        {
            j.Status = JobStatus.Cancelled;
            j.FinishedAt = jobs.Now;
            j.ReleaseLease();
        }, ct);
        if (cancelled is null)
        {
            var job = await jobs.GetAsync(workspaceId, jobId, ct) ?? throw JobNotFound(jobId);
            throw new ApiException(StatusCodes.Status409Conflict, "job_not_cancellable", $"The job is already {JobView.StatusName(job.Status)}.");
        }

        // In this process the run stops at once; a worker elsewhere notices at its next lease renewal.
        runtime.Stop(jobId, StopReason.CancelledByUser);
        await jobs.AddEventAsync(cancelled, "status", "Cancelled by request.", e => e.Status = "cancelled", ct);
        logger.LogInformation("Cancelled fine-tune job {JobId}", jobId);
        return cancelled;
    }

    public static ApiException JobNotFound(string jobId) =>
        new(StatusCodes.Status404NotFound, "job_not_found", $"No fine-tune job '{jobId}' in this workspace.");

    private static string? ValidateWebhook(string? url, HostAllowList allowList)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return null;
        }

        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) || uri.Host.Length == 0)
        {
            throw BadRequest("webhookUrl must be an absolute https URL.", "webhookUrl");
        }

        var allowListed = allowList.Lists(uri.IdnHost);
        if (uri.Scheme != Uri.UriSchemeHttps && !allowListed)
        {
            throw BadRequest("webhookUrl must use https.", "webhookUrl");
        }

        return uri.AbsoluteUri;
    }

    /// <summary>A number as given, or null (and its name added to <paramref name="auto"/>) when omitted, null or <c>"auto"</c>.</summary>
    private static double? Numeric(JsonElement? value, string name, bool integer, List<string> auto)
    {
        var param = $"hyperparameters.{name}";
        switch (value)
        {
            case null:
            case { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined }:
            case { ValueKind: JsonValueKind.String } text when string.Equals(text.GetString()?.Trim(), "auto", StringComparison.OrdinalIgnoreCase):
                auto.Add(name);
                return null;
            case { ValueKind: JsonValueKind.Number } number when integer:
                return number.TryGetInt32(out var whole) ? whole : throw BadRequest($"{param} must be a whole number or \"auto\".", param);
            case { ValueKind: JsonValueKind.Number } number:
                return number.TryGetDouble(out var real) ? real : throw BadRequest($"{param} must be a number or \"auto\".", param);
            default:
                throw BadRequest($"{param} must be a {(integer ? "whole number" : "number")} or \"auto\".", param);
        }
    }

    private static ApiException BadRequest(string message, string param) =>
        new(StatusCodes.Status400BadRequest, "invalid_parameter", message, param);
}
