using System.Diagnostics;
using System.Globalization;
using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Training;

/// <summary>
/// Trains llama-architecture GGUF models on the CPU with ggml: full fine-tuning or LoRA, AdamW with warmup and
/// cosine decay, loss on completion tokens only, per-epoch evaluation, checkpoints, resume and cancellation.
/// </summary>
public sealed class LlamaTrainer
{
    /// <summary>The checkpoint file a run keeps in its checkpoint folder (place one there to resume elsewhere).</summary>
    public static string CheckpointPath(string checkpointDirectory) => TrainingCheckpoint.PathIn(checkpointDirectory);

    /// <summary>
    /// Runs training on a background thread. Progress is reported synchronously from that thread after every step.
    /// On cancellation the task ends with <see cref="OperationCanceledException"/> and no output file is written
    /// (checkpoints are removed too unless <see cref="TrainingOptions.KeepCheckpointsOnCancel"/>).
    /// </summary>
    public Task<TrainingResult> TrainAsync(
        TrainingOptions options,
        IReadOnlyList<TrainingExample> train,
        IReadOnlyList<TrainingExample> eval,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(eval);
        options.Validate();
        return Task.Factory.StartNew(
            () => Train(options, train, eval, progress, cancellationToken),
            cancellationToken,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Logits of the training graph's forward pass for one sequence (positions 0..n-1):
    /// <c>result[position][token]</c>. Used to check the graph against llama.cpp.
    /// </summary>
    public static float[][] ComputeLogits(string modelPath, IReadOnlyList<int> tokens, int threads = 2)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count == 0)
        {
            throw new ArgumentException("At least one token is needed.", nameof(tokens));
        }

        var model = TrainingModel.Load(modelPath);
        var example = new TrainingExample(tokens);
        var batch = SequencePacker.Pack([example], [0], tokens.Count, 1, pack: false).SingleOrDefault()
            ?? SinglePositionBatch(tokens);
        using var graph = new LlamaTrainingGraph(model.Shape, model.Weights, false, [], tokens.Count, 1, threads, new AdamWSettings(), forwardOnly: true);
        var flat = graph.ComputeLogits(batch);
        var vocab = model.Shape.VocabSize;
        return Enumerable.Range(0, tokens.Count).Select(i => flat.AsSpan(i * vocab, vocab).ToArray()).ToArray();
    }

    /// <summary>Optimiser steps one epoch of <paramref name="train"/> takes with these options (rows packed as training packs them).</summary>
    public static int StepsPerEpoch(IReadOnlyList<TrainingExample> train, int sequenceLength, int batchSize, bool packSequences = true)
    {
        ArgumentNullException.ThrowIfNull(train);
        var rows = SequencePacker.Pack(train, Enumerable.Range(0, train.Count).ToList(), sequenceLength, 1, packSequences).Count;
        return (rows + batchSize - 1) / batchSize;
    }

    private static PackedBatch SinglePositionBatch(IReadOnlyList<int> tokens) => new()
    {
        SequenceLength = tokens.Count,
        Rows = 1,
        Tokens = tokens.ToArray(),
        Positions = Enumerable.Range(0, tokens.Count).ToArray(),
        Targets = Enumerable.Repeat(-1, tokens.Count).ToArray(),
        Segments = new int[tokens.Count],
        TokenCount = tokens.Count,
    };

    private static TrainingResult Train(
        TrainingOptions options,
        IReadOnlyList<TrainingExample> train,
        IReadOnlyList<TrainingExample> eval,
        IProgress<TrainingProgress>? progress,
        CancellationToken ct)
    {
        var started = Stopwatch.StartNew();
        ct.ThrowIfCancellationRequested();
        var model = TrainingModel.Load(options.BaseModelPath);
        var loras = options.Mode == TrainingMode.Lora ? CreateLoras(model, options) : [];

        // Rows are packed once from a seeded order; each epoch then visits them in its own seeded order,
        // so every epoch has the same number of steps and a resumed run sees exactly the same batches.
        var packOrder = Enumerable.Range(0, train.Count).ToList();
        new DeterministicRandom(Mix(options.Seed, 1)).Shuffle(packOrder);
        var rows = SequencePacker.Pack(train, packOrder, options.SequenceLength, 1, options.PackSequences);
        if (rows.Count == 0)
        {
            throw new ArgumentException("The training set has no example with a trained token.", nameof(train));
        }

        var stepsPerEpoch = (rows.Count + options.BatchSize - 1) / options.BatchSize;
        var totalSteps = options.MaxSteps ?? stepsPerEpoch * options.Epochs;
        var totalEpochs = (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch;
        var evalBatches = SequencePacker.Pack(eval, Enumerable.Range(0, eval.Count).ToList(), options.SequenceLength, options.BatchSize, options.PackSequences);
        var warmup = options.WarmupSteps ?? Math.Min(100, totalSteps / 20);
        var fingerprint = Fingerprint(options, model, train.Count, totalSteps);

        using var graph = new LlamaTrainingGraph(
            model.Shape,
            model.Weights,
            trainBaseWeights: options.Mode == TrainingMode.Full,
            loras,
            options.SequenceLength,
            options.BatchSize,
            options.Threads,
            new AdamWSettings(WeightDecay: options.WeightDecay));
        var shapes = model.Weights.Select(w => (w.Name, w.Shape))
            .Concat(loras.SelectMany(l => new[] { (l.A.Name, l.A.Shape), (l.B.Name, l.B.Shape) }))
            .ToDictionary(x => x.Name, x => x.Shape, StringComparer.Ordinal);

        var step = 0;
        var lastLoss = float.NaN;
        if (options.CheckpointDirectory is { } resumeDir && options.ResumeFromCheckpoint && TrainingCheckpoint.TryRead(resumeDir) is { } checkpoint)
        {
            if (checkpoint.Fingerprint != fingerprint)
            {
                throw new InvalidOperationException(
                    $"The checkpoint in '{resumeDir}' belongs to a different run (model, data size or options differ); remove it or use another directory.");
            }

            foreach (var (name, data) in checkpoint.Tensors)
            {
                graph.Write(name, data);
            }

            graph.ResetOptimizer();
            step = checkpoint.Step;
            lastLoss = checkpoint.Loss;
        }

        var resumedFrom = step;
        var completed = false;
        try
        {
            float? initialEval = evalBatches.Count > 0 ? Evaluate(graph, evalBatches, ct) : null;
            float? lastEval = initialEval;
            var epochEvals = new List<float>();
            long trainedTokens = 0;
            var trainTime = new Stopwatch();
            List<PackedBatch>? epochBatches = null;
            var epochOfBatches = -1;
            var bestEval = float.PositiveInfinity;
            var bestStep = step;
            Dictionary<string, float[]>? bestWeights = null;
            var sinceBest = 0;
            var stoppedEarly = false;

            while (step < totalSteps)
            {
                ct.ThrowIfCancellationRequested();
                var epoch = step / stepsPerEpoch;
                if (epoch != epochOfBatches)
                {
                    epochBatches = EpochBatches(rows, options, epoch);
                    epochOfBatches = epoch;
                }

                var batch = epochBatches![step % stepsPerEpoch];
                var learningRate = LearningRate(options, warmup, totalSteps, step);

                trainTime.Start();
                lastLoss = graph.TrainStep(batch, learningRate);
                trainTime.Stop();
                trainedTokens += batch.TokenCount;
                step++;

                if (!float.IsFinite(lastLoss))
                {
                    throw new InvalidOperationException($"Training diverged at step {step} (loss {lastLoss}); lower the learning rate.");
                }

                float? evalLoss = null;
                string? snapshotPath = null;
                var endOfEpoch = step % stepsPerEpoch == 0 || step == totalSteps;
                if (endOfEpoch && evalBatches.Count > 0)
                {
                    evalLoss = Evaluate(graph, evalBatches, ct);
                    epochEvals.Add(evalLoss.Value);
                    lastEval = evalLoss;
                    if (evalLoss.Value < bestEval)
                    {
                        bestEval = evalLoss.Value;
                        bestStep = step;
                        sinceBest = 0;
                        if (options.OutputBestEvaluation)
                        {
                            bestWeights = graph.TrainableNames.ToDictionary(n => n, graph.Read, StringComparer.Ordinal);
                        }

                        if (options.SnapshotDirectory is { } snapshots)
                        {
                            snapshotPath = Path.Combine(snapshots, string.Create(CultureInfo.InvariantCulture, $"step-{step:D6}.gguf"));
                            WriteOutput(options with { OutputPath = snapshotPath }, model, graph, loras);
                        }
                    }
                    else if (options.EarlyStoppingPatience is { } patience && ++sinceBest >= patience && step < totalSteps)
                    {
                        stoppedEarly = true;
                    }
                }

                string? checkpointPath = null;
                if (options.CheckpointDirectory is { } dir && options.CheckpointInterval > 0 && step % options.CheckpointInterval == 0 && step < totalSteps)
                {
                    var tensors = graph.TrainableNames.ToDictionary(n => n, graph.Read, StringComparer.Ordinal);
                    new TrainingCheckpoint(step, epoch, lastLoss, fingerprint, tensors).Write(dir, shapes);
                    checkpointPath = TrainingCheckpoint.PathIn(dir);
                }

                progress?.Report(new TrainingProgress
                {
                    Step = step,
                    TotalSteps = totalSteps,
                    Epoch = epoch + 1,
                    TotalEpochs = totalEpochs,
                    Loss = lastLoss,
                    LearningRate = learningRate,
                    TokensPerSecond = trainedTokens / Math.Max(trainTime.Elapsed.TotalSeconds, 1e-9),
                    EvalLoss = evalLoss,
                    CheckpointPath = checkpointPath,
                    SnapshotPath = snapshotPath,
                    StoppedEarly = stoppedEarly,
                });
                if (stoppedEarly)
                {
                    break;
                }
            }

            ct.ThrowIfCancellationRequested();
            var outputStep = step;
            var outputEval = lastEval;
            if (bestWeights is not null && bestStep != step)
            {
                // The best evaluation's weights, not the last step's.
                foreach (var (name, data) in bestWeights)
                {
                    graph.Write(name, data);
                }

                outputStep = bestStep;
                outputEval = bestEval;
            }

            WriteOutput(options, model, graph, loras);
            completed = true;

            return new TrainingResult
            {
                OutputPath = options.OutputPath,
                Mode = options.Mode,
                Steps = step,
                Epochs = totalEpochs,
                ResumedFromStep = resumedFrom,
                FinalTrainLoss = lastLoss,
                InitialEvalLoss = initialEval,
                FinalEvalLoss = lastEval,
                OutputStep = outputStep,
                OutputEvalLoss = outputEval,
                StoppedEarly = stoppedEarly,
                EpochEvalLosses = epochEvals,
                TrainableParameters = graph.TrainableNames.Sum(n => shapes[n].Aggregate(1L, (a, b) => a * b)),
                TrainedTokens = trainedTokens,
                TokensPerSecond = trainedTokens / Math.Max(trainTime.Elapsed.TotalSeconds, 1e-9),
                Duration = started.Elapsed,
            };
        }
        finally
        {
            var cancelled = !completed && ct.IsCancellationRequested;
            if (options.CheckpointDirectory is { } dir && (completed || (cancelled && !options.KeepCheckpointsOnCancel)))
            {
                // A finished run needs no resume point; a cancelled one leaves nothing behind unless asked to.
                TrainingCheckpoint.Delete(dir);
            }
        }
    }

    private static float Evaluate(LlamaTrainingGraph graph, List<PackedBatch> batches, CancellationToken ct)
    {
        double weighted = 0;
        long targets = 0;
        foreach (var batch in batches)
        {
            ct.ThrowIfCancellationRequested();
            var count = batch.TargetCount;
            weighted += (double)graph.Evaluate(batch) * count;
            targets += count;
        }

        return (float)(weighted / targets);
    }

    private static List<PackedBatch> EpochBatches(List<PackedBatch> rows, TrainingOptions options, int epoch)
    {
        var order = Enumerable.Range(0, rows.Count).ToList();
        new DeterministicRandom(Mix(options.Seed, 1000 + epoch)).Shuffle(order);
        var batches = new List<PackedBatch>();
        for (var start = 0; start < order.Count; start += options.BatchSize)
        {
            var chosen = order.Skip(start).Take(options.BatchSize).Select(i => rows[i]).ToList();
            batches.Add(Stack(chosen, options.SequenceLength, options.BatchSize));
        }

        return batches;
    }

    /// <summary>Stacks single-row batches into one batch; missing rows are padding.</summary>
    private static PackedBatch Stack(List<PackedBatch> rows, int sequenceLength, int batchSize)
    {
        var n = sequenceLength * batchSize;
        var tokens = new int[n];
        var positions = new int[n];
        var targets = new int[n];
        var segments = new int[n];
        Array.Fill(targets, -1);
        Array.Fill(segments, -1);
        for (var i = 0; i < n; i++)
        {
            positions[i] = i % sequenceLength;
        }

        for (var r = 0; r < rows.Count; r++)
        {
            rows[r].Tokens.CopyTo(tokens, r * sequenceLength);
            rows[r].Positions.CopyTo(positions, r * sequenceLength);
            rows[r].Targets.CopyTo(targets, r * sequenceLength);
            rows[r].Segments.CopyTo(segments, r * sequenceLength);
        }

        return new PackedBatch
        {
            SequenceLength = sequenceLength,
            Rows = batchSize,
            Tokens = tokens,
            Positions = positions,
            Targets = targets,
            Segments = segments,
            TokenCount = rows.Sum(r => r.TokenCount),
        };
    }

    /// <summary>Linear warmup to the peak, then cosine decay to <see cref="TrainingOptions.FinalLearningRateFraction"/> of it.</summary>
    internal static float LearningRate(TrainingOptions options, int warmup, int totalSteps, int step)
    {
        if (step < warmup)
        {
            return options.LearningRate * (step + 1) / warmup;
        }

        var progress = totalSteps - warmup <= 1 ? 1.0 : (double)(step - warmup) / (totalSteps - warmup - 1);
        var floor = options.FinalLearningRateFraction;
        return (float)(options.LearningRate * (floor + (1 - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress))));
    }

    private static List<LoraPair> CreateLoras(TrainingModel model, TrainingOptions options)
    {
        var lora = options.Lora;
        var scale = lora.Alpha / lora.Rank;
        var random = new DeterministicRandom(Mix(options.Seed, 2));
        var byName = model.Weights.ToDictionary(w => w.Name, StringComparer.Ordinal);
        var pairs = new List<LoraPair>();
        var names = new List<string>();
        for (var layer = 0; layer < model.Shape.BlockCount; layer++)
        {
            names.AddRange(lora.TargetModules.Where(TrainingModel.IsLayerModule).Select(m => TrainingModel.TargetTensorName(m, layer)));
        }

        if (lora.TargetModules.Contains("output"))
        {
            if (!byName.ContainsKey("output.weight"))
            {
                throw new NotSupportedException("The model ties its output head to the token embeddings; drop 'output' from the LoRA targets.");
            }

            names.Add("output.weight");
        }

        foreach (var name in names)
        {
            var weight = byName[name];
            long input = weight.Shape[0], output = weight.Shape[1];
            // A starts small and random, B at zero: the adapter begins as an exact no-op (as in the LoRA paper).
            var bound = 1.0 / Math.Sqrt(input);
            var a = new float[input * lora.Rank];
            for (var i = 0; i < a.Length; i++)
            {
                a[i] = (float)((random.NextDouble() * 2 - 1) * bound);
            }

            pairs.Add(new LoraPair(
                name,
                new ModelTensor(name + ".lora_a", [input, lora.Rank], a),
                new ModelTensor(name + ".lora_b", [lora.Rank, output], new float[output * lora.Rank]),
                scale));
        }

        return pairs;
    }

    private static void WriteOutput(TrainingOptions options, TrainingModel model, LlamaTrainingGraph graph, List<LoraPair> loras)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(options.OutputPath))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(options.OutputPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            if (options.Mode == TrainingMode.Lora)
            {
                var pairs = loras.Select(l => new LoraTensorPair(
                    l.BaseName,
                    Input: (int)l.A.Shape[0],
                    Output: (int)l.B.Shape[1],
                    Rank: options.Lora.Rank,
                    A: graph.Read(l.A.Name),
                    B: graph.Read(l.B.Name)));
                LoraAdapterGguf.Write(temporary, "llama", options.Lora.Alpha, pairs, options.ModelName ?? "llmtune-lora");
            }
            else
            {
                // Same metadata (tokenizer, template, hyperparameters) as the base; every weight now F32.
                var writer = new GgufWriter();
                foreach (var (key, value) in model.File.Metadata)
                {
                    writer.Metadata.Set(key, value);
                }

                writer.Metadata.Set("general.file_type", 0u); // LLAMA_FTYPE_ALL_F32
                if (options.ModelName is { } name)
                {
                    writer.Metadata.Set("general.name", name);
                }

                foreach (var weight in model.Weights)
                {
                    writer.AddTensor(weight.Name, weight.Shape, graph.Read(weight.Name));
                }

                writer.Write(temporary);
            }

            File.Move(temporary, options.OutputPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Identifies what a checkpoint belongs to, so a resume never mixes runs.</summary>
    private static string Fingerprint(TrainingOptions o, TrainingModel model, int trainCount, int totalSteps) =>
        string.Join('|',
            o.Mode,
            o.Mode == TrainingMode.Lora ? $"{o.Lora.Rank}:{o.Lora.Alpha.ToString(CultureInfo.InvariantCulture)}:{string.Join(',', o.Lora.TargetModules)}" : "-",
            model.Shape,
            new FileInfo(o.BaseModelPath).Length,
            o.SequenceLength,
            o.BatchSize,
            o.PackSequences,
            o.Seed,
            trainCount,
            totalSteps);

    private static ulong Mix(int seed, int stream) => ((ulong)(uint)seed << 32) ^ (ulong)(uint)stream ^ 0x5DEECE66DUL;
}
