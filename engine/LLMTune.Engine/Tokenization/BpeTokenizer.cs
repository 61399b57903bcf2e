using System.Text;
using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Tokenization;

/// <summary>
/// Encodes and decodes text with a <see cref="BpeVocabulary"/>, producing the ids llama.cpp produces for a GGUF with
/// <c>tokenizer.ggml.model</c> = "gpt2" and <c>tokenizer.ggml.pre</c> = "gpt-2": special tokens are cut out first
/// (when parsing them is asked for), the rest is split by <see cref="Gpt2PreTokenizer"/>, each word is mapped to
/// byte-level characters and merged by rank, lowest first and leftmost on ties.
/// </summary>
public sealed class BpeTokenizer
{
    private readonly BpeVocabulary _vocabulary;
    private readonly (string Text, int Id)[] _specialTokens;

    public BpeTokenizer(BpeVocabulary vocabulary)
    {
        _vocabulary = vocabulary;
        // Longest first, as llama.cpp's special-token cache is ordered, so that a longer token wins over its prefix.
        _specialTokens = vocabulary.SpecialTokenIds
            .Select(id => (vocabulary.Tokens[id], id))
            .OrderByDescending(t => t.Item1.Length)
            .ThenBy(t => t.id)
            .ToArray();
    }

    public BpeVocabulary Vocabulary => _vocabulary;

    /// <summary>Token ids of <paramref name="text"/>; with <paramref name="parseSpecial"/> the special tokens' text maps to their ids.</summary>
    public List<int> Encode(string text, bool parseSpecial = true)
    {
        var ids = new List<int>();
        foreach (var (fragment, specialId) in Partition(text, parseSpecial))
        {
            if (specialId >= 0)
            {
                ids.Add(specialId);
                continue;
            }
            foreach (var word in Gpt2PreTokenizer.Split(fragment))
            {
                EncodeWord(Gpt2ByteEncoding.Encode(word), ids);
            }
        }
        return ids;
    }

    /// <summary>Text of <paramref name="ids"/>; special tokens are written out only when <paramref name="renderSpecial"/> is set.</summary>
    public string Decode(IEnumerable<int> ids, bool renderSpecial = false)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            AppendTokenBytes(id, bytes, renderSpecial);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The raw bytes one token stands for (a token may hold part of a UTF-8 sequence).</summary>
    public byte[] TokenBytes(int id, bool renderSpecial = false)
    {
        var bytes = new List<byte>();
        AppendTokenBytes(id, bytes, renderSpecial);
        return bytes.ToArray();
    }

    private void AppendTokenBytes(int id, List<byte> bytes, bool renderSpecial)
    {
        var token = _vocabulary.Tokens[id];
        var type = _vocabulary.TokenTypes[id];
        if (type is BpeTokenType.Control or BpeTokenType.UserDefined)
        {
            if (renderSpecial || type == BpeTokenType.UserDefined)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
            return;
        }
        bytes.AddRange(Gpt2ByteEncoding.Decode(token));
    }

    private IEnumerable<(string Fragment, int SpecialId)> Partition(string text, bool parseSpecial)
    {
        if (!parseSpecial || _specialTokens.Length == 0)
        {
            if (text.Length > 0)
            {
                yield return (text, -1);
            }
            yield break;
        }
        var start = 0;
        while (start < text.Length)
        {
            var bestIndex = -1;
            var bestId = -1;
            var bestLength = 0;
            foreach (var (special, id) in _specialTokens)
            {
                var index = text.IndexOf(special, start, StringComparison.Ordinal);
                if (index >= 0 && (bestIndex < 0 || index < bestIndex))
                {
                    bestIndex = index;
                    bestId = id;
                    bestLength = special.Length;
                }
            }
            if (bestIndex < 0)
            {
                yield return (text[start..], -1);
                yield break;
            }
            if (bestIndex > start)
            {
                yield return (text[start..bestIndex], -1);
            }
            yield return (string.Empty, bestId);
            start = bestIndex + bestLength;
        }
    }

    private void EncodeWord(string byteLevelWord, List<int> ids)
    {
        var symbols = new List<string>(byteLevelWord.Length);
        foreach (var c in byteLevelWord)
        {
            symbols.Add(c.ToString());
        }
        var ranks = _vocabulary.MergeRanks;
        while (symbols.Count > 1)
        {
            var bestRank = int.MaxValue;
            var bestAt = -1;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                if (ranks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    bestAt = i;
                }
            }
            if (bestAt < 0)
            {
                break;
            }
            symbols[bestAt] += symbols[bestAt + 1];
            symbols.RemoveAt(bestAt + 1);
        }
        foreach (var symbol in symbols)
        {
            if (_vocabulary.TryGetId(symbol, out var id))
            {
                ids.Add(id);
                continue;
            }
            // Same fallback as llama.cpp: a merged piece missing from the vocabulary is emitted character by character.
            foreach (var c in symbol)
            {
                ids.Add(_vocabulary.IdOf(c.ToString()));
            }
        }
    }
}
