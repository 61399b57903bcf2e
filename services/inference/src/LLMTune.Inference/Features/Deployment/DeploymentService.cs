using LLMTune.Contracts;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Models;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Logging;

namespace LLMTune.Inference.Features.Deployment;

/// <summary>A deployment that cannot succeed by retrying (unknown base model, missing or incompatible artifact).</summary>
public sealed class DeploymentFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Puts finished fine-tunes into service and takes them out. The store is the truth: a deployment is recorded before
/// it is announced, a restarted process reloads every recorded deployment, and a replica that has not loaded one yet
/// loads it on first use.
/// </summary>
public sealed class DeploymentService(
    ModelRegistry registry,
    ModelManager engine,
    IDocumentStore store,
    IArtifactStore artifacts,
    EventOutbox outbox,
    TimeProvider time,
    ILogger<DeploymentService> logger)
{
    // Deployments are rare; one at a time keeps loading, restoring and removing from racing each other.
    private readonly SemaphoreSlim _gate = new(1, 1);

    private IDocumentCollection<DeployedModel> Deployments => store.Collection<DeployedModel>(DeployedModel.Collection);

    /// <summary>
    /// Deploys the job's artifact (idempotent by job id) and returns its record, or null when the owner already
    /// removed it. A LoRA becomes a variant of its loaded base model; a full model is loaded on its own.
    /// </summary>
    public async Task<DeployedModel?> DeployAsync(TrainingCompleted training, CancellationToken cancellationToken)
    {
        var id = DeployedModel.ModelIdFor(training.BaseModel, training.WorkspaceId, training.JobId);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = await Deployments.GetAsync(id, cancellationToken).ConfigureAwait(false);
            if (record?.RemovedAt is not null)
            {
                logger.LogInformation("Not deploying {ModelId}: its owner removed it", id);
                return null;
            }

            record ??= new DeployedModel
            {
                Id = id,
                WorkspaceId = training.WorkspaceId,
                JobId = training.JobId,
                BaseModel = training.BaseModel,
                ArtifactLocation = training.ArtifactUri,
                ArtifactKind = training.ArtifactKind,
                CreatedAt = time.GetUtcNow().UtcDateTime,
            };

            if (!registry.Contains(id))
            {
                await LoadAsync(record).ConfigureAwait(false);
            }

            if (record.Version == 0)
            {
                try
                {
                    // Recorded and announced in one write: a redelivered TrainingCompleted finds the record and announces nothing.
                    await outbox.Write()
                        .Insert(Deployments, record)
                        .Add(new ModelDeployed(record.WorkspaceId, training.JobId, time.GetUtcNow(), record.Id, record.BaseModel, record.JobId, training.WebhookUrl))
                        .CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (DuplicateDocumentException)
                {
                    record = (await Deployments.GetAsync(id, cancellationToken).ConfigureAwait(false))!;
                }
                catch
                {
                    await UnloadAsync(id).ConfigureAwait(false); // not recorded means not deployed: the retry starts clean
                    throw;
                }
            }

            logger.LogInformation("Deployed {ModelId} ({Kind}) for workspace {WorkspaceId}", id, record.ArtifactKind, record.WorkspaceId);
            return record;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Loads every recorded deployment (at start). Failures are logged; the others still load.</summary>
    public async Task RestoreAllAsync(CancellationToken cancellationToken)
    {
        var records = await Deployments.FindAsync(d => d.RemovedAt == null, null, cancellationToken).ConfigureAwait(false);
        foreach (var record in records)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!registry.Contains(record.Id))
                {
                    await LoadAsync(record).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is DeploymentFailedException or EngineException)
            {
                logger.LogError(e, "Could not restore deployed model {ModelId}", record.Id);
            }
            finally
            {
                _gate.Release();
            }
        }

        logger.LogInformation("Restored {Count} deployed models", records.Count);
    }

    /// <summary>A deployment recorded by another replica (or before a failed restore) loads on first use.</summary>
    public async Task<ServedModel?> TryRestoreAsync(string modelId, string workspaceId, CancellationToken cancellationToken)
    {
        if (!modelId.StartsWith("ft:", StringComparison.Ordinal))
        {
            return null;
        }

        var record = await Deployments.GetAsync(modelId, cancellationToken).ConfigureAwait(false);
        if (record is null || record.RemovedAt is not null || record.WorkspaceId != workspaceId)
        {
            return null;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (registry.Find(modelId, workspaceId) is { } loaded)
            {
                return loaded;
            }

            // Read again under the gate: a removal may have landed while this request waited for it.
            record = await Deployments.GetAsync(modelId, cancellationToken).ConfigureAwait(false);
            return record is null || record.RemovedAt is not null ? null : await LoadAsync(record).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DeploymentFailedException or EngineException)
        {
            logger.LogError(e, "Could not load deployed model {ModelId}", modelId);
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Takes the workspace's fine-tune out of service for good; false when it has no such model.</summary>
    public async Task<bool> RemoveAsync(string modelId, string workspaceId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = await Deployments.GetAsync(modelId, cancellationToken).ConfigureAwait(false);
            if (record is null || record.RemovedAt is not null || record.WorkspaceId != workspaceId)
            {
                return false;
            }

            record.RemovedAt = time.GetUtcNow().UtcDateTime;
            // The other replicas learn of it from ModelRemoved, recorded with the removal.
            await outbox.Write()
                .Replace(Deployments, record)
                .Add(new ModelRemoved(workspaceId, modelId, time.GetUtcNow(), modelId))
                .CommitAsync(cancellationToken).ConfigureAwait(false);
            await UnloadAsync(modelId).ConfigureAwait(false);
            logger.LogInformation("Removed deployed model {ModelId}", modelId);
        }
        finally
        {
            _gate.Release();
        }

        return true;
    }

    /// <summary>Another replica removed the model: take it out of service here too (the store confirms the removal).</summary>
    public async Task UnloadRemovedAsync(string modelId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (registry.Contains(modelId) && await Deployments.GetAsync(modelId, cancellationToken).ConfigureAwait(false) is { RemovedAt: not null })
            {
                await UnloadAsync(modelId).ConfigureAwait(false);
                logger.LogInformation("Unloaded {ModelId}, removed on another replica", modelId);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ServedModel> LoadAsync(DeployedModel record)
    {
        var artifactPath = await LocalFileOfAsync(record).ConfigureAwait(false);

        var baseModel = registry.FindShared(record.BaseModel) as LocalServedModel;
        ServedModel served;
        try
        {
            switch (record.ArtifactKind)
            {
                case DeployedModel.LoraKind:
                    if (baseModel is not { Variant: null })
                    {
                        throw new DeploymentFailedException($"LoRA {record.Id} needs its base model '{record.BaseModel}' loaded locally.");
                    }

                    await baseModel.Model.AddVariantAsync(new ModelVariantOptions(record.Id, [new LoraAdapterReference(artifactPath)])).ConfigureAwait(false);
                    served = new LocalServedModel
                    {
                        Id = record.Id,
                        WorkspaceId = record.WorkspaceId,
                        Created = new DateTimeOffset(record.CreatedAt, TimeSpan.Zero),
                        Model = baseModel.Model,
                        Variant = record.Id,
                        Settings = baseModel.Settings,
                    };
                    break;
                case DeployedModel.FullKind:
                    // A full fine-tune runs like its base: same context, concurrency and queue.
                    var settings = baseModel?.Settings ?? new ModelOptions();
                    var model = await engine.LoadAsync(record.Id, ModelLoading.EngineOptions(artifactPath, settings)).ConfigureAwait(false);
                    served = new LocalServedModel
                    {
                        Id = record.Id,
                        WorkspaceId = record.WorkspaceId,
                        Created = new DateTimeOffset(record.CreatedAt, TimeSpan.Zero),
                        Model = model,
                        Settings = settings,
                    };
                    break;
                default:
                    throw new DeploymentFailedException($"Unknown artifact kind '{record.ArtifactKind}' for {record.Id} (expected lora or full).");
            }
        }
        catch (ModelLoadException e)
        {
            throw new DeploymentFailedException($"Could not load {record.Id}: {e.Message}", e);
        }

        registry.Add(served);
        return served;
    }

    private async Task UnloadAsync(string modelId)
    {
        if (!registry.Remove(modelId, out var removed) || removed is not LocalServedModel local)
        {
            return;
        }

        if (local.Variant is not null)
        {
            await local.Model.RemoveVariantAsync(local.Variant).ConfigureAwait(false);
        }
        else
        {
            await engine.UnloadAsync(local.EngineId).ConfigureAwait(false);
        }
    }

    /// <summary>The artifact as a file llama.cpp can load: straight from the local store, or downloaded (and cached) from S3.</summary>
    private async Task<string> LocalFileOfAsync(DeployedModel record)
    {
        var key = artifacts.KeyOf(record.ArtifactLocation)
            ?? throw new DeploymentFailedException(
                $"Artifact '{record.ArtifactLocation}' of {record.Id} is not in this service's artifact store; inference and fine-tune must share the Artifacts:* settings.");
        try
        {
            return await artifacts.GetLocalFileAsync(key, CancellationToken.None).ConfigureAwait(false)
                ?? throw new DeploymentFailedException($"Artifact '{record.ArtifactLocation}' of {record.Id} does not exist.");
        }
        catch (Exception e) when (e is not DeploymentFailedException and not OperationCanceledException)
        {
            throw new DeploymentFailedException($"Artifact '{record.ArtifactLocation}' of {record.Id} cannot be read: {e.Message}", e);
        }
    }
}
