using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Tokenization;

/// <summary>Settings for learning a byte-level BPE vocabulary.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Total vocabulary size: 256 byte tokens + learned merges + special tokens.</summary>
    public int VocabularySize { get; init; } = 512;

    /// <summary>A pair must occur at least this often (weighted by word frequency) to be merged.</summary>
    public int MinPairFrequency { get; init; } = 2;

    /// <summary>
    /// Keeps decimal digits as single-byte tokens (no merge touches a digit), so numbers are read digit by digit:
    /// small models learn arithmetic far better that way.
    /// </summary>
    public bool SplitDigits { get; init; } = true;

    /// <summary>Special tokens appended after the learned tokens, as control tokens, in this order.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } =
        [BpeVocabulary.EndOfTextToken, BpeVocabulary.ImStartToken, BpeVocabulary.ImEndToken];

    public string BosToken { get; init; } = BpeVocabulary.EndOfTextToken;
    public string EosToken { get; init; } = BpeVocabulary.ImEndToken;
    public string PadToken { get; init; } = BpeVocabulary.EndOfTextToken;
}

/// <summary>
/// Learns a byte-level BPE vocabulary from texts. Deterministic: counts are exact integers and ties between equally
/// frequent pairs go to the ordinally smaller (left, right) pair, so the same corpus always gives the same merges.
/// </summary>
public static class BpeTrainer
{
    public static BpeVocabulary Train(IEnumerable<string> texts, BpeTrainerOptions options, CancellationToken cancellationToken = default)
    {
        var specials = options.SpecialTokens;
        var mergeBudget = options.VocabularySize - 256 - specials.Count;
        if (mergeBudget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "The vocabulary must hold the 256 byte tokens and the special tokens.");
        }

        // Word frequencies over pre-tokenized text; special tokens never take part in merges.
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in texts)
        {
            foreach (var fragment in text.Split(specials.ToArray(), StringSplitOptions.None))
            {
                foreach (var word in Gpt2PreTokenizer.Split(fragment))
                {
                    var encoded = Gpt2ByteEncoding.Encode(word);
                    wordCounts[encoded] = wordCounts.GetValueOrDefault(encoded) + 1;
                }
            }
        }

        var words = wordCounts
            .OrderBy(w => w.Key, StringComparer.Ordinal)
            .Select(w => (Symbols: w.Key.Select(c => c.ToString()).ToList(), Count: w.Value))
            .ToList();

        var tokens = new List<string>(options.VocabularySize);
        for (var b = 0; b < 256; b++)
        {
            tokens.Add(Gpt2ByteEncoding.CharOf((byte)b).ToString());
        }
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var merges = new List<(string, string)>(mergeBudget);

        bool Mergeable(string left, string right) =>
            !options.SplitDigits || !(left.Any(char.IsAsciiDigit) || right.Any(char.IsAsciiDigit));

        while (merges.Count < mergeBudget)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var pairCounts = new Dictionary<(string, string), long>();
            foreach (var (symbols, count) in words)
            {
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    if (Mergeable(pair.Item1, pair.Item2))
                    {
                        pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + count;
                    }
                }
            }

            (string Left, string Right) best = default;
            long bestCount = 0;
            foreach (var (pair, count) in pairCounts)
            {
                if (count > bestCount || (count == bestCount && ComparePairs(pair, best) < 0))
                {
                    best = pair;
                    bestCount = count;
                }
            }
            if (bestCount < Math.Max(1, options.MinPairFrequency))
            {
                break;
            }

            var merged = best.Left + best.Right;
            merges.Add(best);
            if (known.Add(merged))
            {
                tokens.Add(merged);
            }
            foreach (var (symbols, _) in words)
            {
                // Left to right, non-overlapping: the same order the encoder applies a merge in.
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == best.Left && symbols[i + 1] == best.Right)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }

        var types = Enumerable.Repeat(BpeTokenType.Normal, tokens.Count).ToList();
        foreach (var special in specials)
        {
            tokens.Add(special);
            types.Add(BpeTokenType.Control);
        }
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal);
        return new BpeVocabulary(tokens, types, merges, ids[options.BosToken], ids[options.EosToken], ids[options.PadToken]);
    }

    private static int ComparePairs((string Left, string Right) a, (string Left, string Right) b)
    {
        var left = string.CompareOrdinal(a.Left, b.Left);
        return left != 0 ? left : string.CompareOrdinal(a.Right, b.Right);
    }
}
