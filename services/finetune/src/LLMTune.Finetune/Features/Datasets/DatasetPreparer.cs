using LLMTune.Engine.Training;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Finetune.Features.Files;
using LLMTune.Finetune.Features.Jobs;
using LLMTune.Platform.Artifacts;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

public sealed record PreparedDataset(IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample> Eval, int Lines);

/// <summary>
/// Gets a job's data into the artifact store once (a snapshot, so a resumed job trains on exactly the same bytes even
/// if the source changes or the upload is deleted), validates it, tokenizes it and splits off the held-out examples.
/// </summary>
public sealed class DatasetPreparer(
    IArtifactStore store,
    FileStore files,
    SafeHttpDownloader https,
    S3DatasetReader s3,
    GcsDatasetReader gcs,
    DatasetTokenizer tokenizer,
    IOptions<FinetuneOptions> options)
{
    public async Task<PreparedDataset> PrepareAsync(FineTuneJob job, string baseModelPath, CancellationToken ct)
    {
        var snapshot = ArtifactKeys.DatasetSnapshot(job.Id);
        if (!await store.ExistsAsync(snapshot, ct))
        {
            await FetchAsync(job, snapshot, ct);
        }

        IReadOnlyList<TextExample> examples;
        await using (var stream = await store.OpenReadAsync(snapshot, ct)
            ?? throw new DatasetException(DatasetException.Unavailable, "The dataset snapshot disappeared from the artifact store."))
        {
            examples = DatasetParser.Parse(stream);
        }

        var settings = options.Value;
        var sequenceLength = settings.Training.SequenceLength;
        var tokenized = await Task.Run(() => tokenizer.Tokenize(baseModelPath, examples, sequenceLength), ct);
        var (train, eval) = Split(tokenized, settings.EvalFraction, StableSeed(job.Id));
        return new PreparedDataset(train, eval, examples.Count);
    }

    /// <summary>A seeded shuffle, then the first share is held out; at least one example always trains.</summary>
    public static (IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample> Eval) Split(IReadOnlyList<TrainingExample> examples, double fraction, int seed)
    {
        var order = Enumerable.Range(0, examples.Count).ToArray();
        new Random(seed).Shuffle(order);
        var evalCount = examples.Count < 2 || fraction <= 0 ? 0 : Math.Clamp((int)Math.Round(examples.Count * fraction), 1, examples.Count - 1);
        return (order.Skip(evalCount).Select(i => examples[i]).ToList(), order.Take(evalCount).Select(i => examples[i]).ToList());
    }

    /// <summary>A seed that is the same for a job on every machine and every run (string.GetHashCode is not).</summary>
    public static int StableSeed(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash & 0x7FFFFFFF);
    }

    private async Task FetchAsync(FineTuneJob job, string snapshot, CancellationToken ct)
    {
        var reference = DatasetReference.TryParse(job.Dataset, out var problem)
            ?? throw new DatasetException(DatasetException.ValidationFailed, problem!);
        switch (reference.Kind)
        {
            case DatasetKind.UploadedFile:
                var file = await files.FindAsync(job.WorkspaceId, reference.Location, ct);
                await using (var source = file is not null ? await store.OpenReadAsync(ArtifactKeys.File(file.Id), ct) : null)
                {
                    if (source is null)
                    {
                        throw new DatasetException(DatasetException.Unavailable, $"The file {reference.Location} no longer exists in this workspace.");
                    }

                    await store.SaveAsync(snapshot, source, long.MaxValue, ct);
                }

                break;
            case DatasetKind.Https:
                await https.DownloadAsync(reference.Url!, store, snapshot, ct);
                break;
            case DatasetKind.S3:
                await WithinTimeoutAsync(job.Dataset, t => s3.CopyAsync(reference.Bucket!, reference.ObjectKey!, store, snapshot, t), ct);
                break;
            case DatasetKind.Gcs:
                await WithinTimeoutAsync(job.Dataset, t => gcs.CopyAsync(reference.Bucket!, reference.ObjectKey!, store, snapshot, t), ct);
                break;
        }
    }

    /// <summary>Bucket reads get the same whole-download limit as https ones (the https downloader applies its own).</summary>
    private async Task WithinTimeoutAsync(string source, Func<CancellationToken, Task<long>> copy, CancellationToken ct)
    {
        var limit = options.Value.RemoteDatasets.Timeout;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(limit);
        try
        {
            await copy(timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new DatasetException(DatasetException.Unavailable, $"{source} did not download within {limit.TotalSeconds:0.#} s (Finetune:RemoteDatasets:Timeout).");
        }
    }
}
