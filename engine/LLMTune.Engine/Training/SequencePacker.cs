namespace LLMTune.Engine.Training;

/// <summary>One optimiser step's worth of token rows, laid out for the training graph.</summary>
internal sealed class PackedBatch
{
    public required int SequenceLength { get; init; }

    public required int Rows { get; init; }

    /// <summary>Token ids, row-major: <c>[row * SequenceLength + position]</c>; padding is token 0.</summary>
    public required int[] Tokens { get; init; }

    /// <summary>RoPE position of each token; it restarts at 0 for each packed example.</summary>
    public required int[] Positions { get; init; }

    /// <summary>Next-token target for each position, or -1 where the position is not part of the loss.</summary>
    public required int[] Targets { get; init; }

    /// <summary>Segment id of each position (examples packed in one row never attend to each other).</summary>
    public required int[] Segments { get; init; }

    /// <summary>Positions that carry a target.</summary>
    public int TargetCount => Targets.Count(t => t >= 0);

    /// <summary>Positions holding real (non-padding) tokens.</summary>
    public required int TokenCount { get; init; }
}

/// <summary>
/// Turns examples into fixed-shape batches: examples are packed greedily into rows of the sequence length
/// (each keeps its own positions and attention segment), longer ones are truncated to it.
/// </summary>
internal static class SequencePacker
{
    private const int PaddingSegment = -1;

    public static List<PackedBatch> Pack(IReadOnlyList<TrainingExample> examples, IReadOnlyList<int> order, int sequenceLength, int rows, bool pack)
    {
        var batches = new List<PackedBatch>();
        var rowContents = new List<List<TrainingExample>>();
        var current = new List<TrainingExample>();
        var used = 0;

        foreach (var index in order)
        {
            var example = examples[index];
            var length = Math.Min(example.Tokens.Count, sequenceLength);
            if (length < 2)
            {
                continue; // nothing to predict
            }

            if (current.Count > 0 && (!pack || used + length > sequenceLength))
            {
                rowContents.Add(current);
                current = [];
                used = 0;
            }

            current.Add(example);
            used += length;
        }

        if (current.Count > 0)
        {
            rowContents.Add(current);
        }

        for (var start = 0; start < rowContents.Count; start += rows)
        {
            var batch = Build(rowContents.Skip(start).Take(rows).ToList(), sequenceLength, rows);
            if (batch.TargetCount > 0)
            {
                batches.Add(batch);
            }
        }

        return batches;
    }

    private static PackedBatch Build(List<List<TrainingExample>> rowExamples, int sequenceLength, int rows)
    {
        var n = sequenceLength * rows;
        var tokens = new int[n];
        var positions = new int[n];
        var targets = new int[n];
        var segments = new int[n];
        Array.Fill(targets, -1);
        Array.Fill(segments, PaddingSegment);
        var tokenCount = 0;

        for (var row = 0; row < rowExamples.Count; row++)
        {
            var offset = row * sequenceLength;
            var segment = 0;
            foreach (var example in rowExamples[row])
            {
                var length = Math.Min(example.Tokens.Count, sequenceLength);
                for (var i = 0; i < length; i++)
                {
                    tokens[offset + i] = example.Tokens[i];
                    positions[offset + i] = i;
                    segments[offset + i] = segment;
                    if (i + 1 < length && example.IsTrained(i + 1))
                    {
                        targets[offset + i] = example.Tokens[i + 1];
                    }
                }

                offset += length;
                tokenCount += length;
                segment++;
            }

            // Padding continues the position count so RoPE sees ordinary positions; it never reaches the loss.
            for (var i = offset; i < (row + 1) * sequenceLength; i++)
            {
                positions[i] = i - row * sequenceLength;
            }
        }

        return new PackedBatch
        {
            SequenceLength = sequenceLength,
            Rows = rows,
            Tokens = tokens,
            Positions = positions,
            Targets = targets,
            Segments = segments,
            TokenCount = tokenCount,
        };
    }
}
