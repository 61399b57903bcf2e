using LLMTune.Engine.Gguf;

namespace LLMTune.Engine.Tokenization;

/// <summary>How llama.cpp treats a token (the values of <c>tokenizer.ggml.token_type</c>).</summary>
public enum BpeTokenType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// A byte-level BPE vocabulary in llama.cpp's "gpt2" form: token strings in GPT-2's byte-level alphabet,
/// merges in rank order as "left right", and the ids of the special tokens.
/// </summary>
public sealed class BpeVocabulary
{
    public const string EndOfTextToken = "<|endoftext|>";
    public const string ImStartToken = "<|im_start|>";
    public const string ImEndToken = "<|im_end|>";

    public BpeVocabulary(IReadOnlyList<string> tokens, IReadOnlyList<BpeTokenType> tokenTypes, IReadOnlyList<(string Left, string Right)> merges,
        int bosTokenId, int eosTokenId, int padTokenId)
    {
        if (tokens.Count != tokenTypes.Count)
        {
            throw new ArgumentException("Every token needs a type.", nameof(tokenTypes));
        }
        Tokens = tokens;
        TokenTypes = tokenTypes;
        Merges = merges;
        BosTokenId = bosTokenId;
        EosTokenId = eosTokenId;
        PadTokenId = padTokenId;

        var ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++)
        {
            if (!ids.TryAdd(tokens[i], i))
            {
                throw new ArgumentException($"Token '{tokens[i]}' appears twice.", nameof(tokens));
            }
        }
        TokenIds = ids;

        var ranks = new Dictionary<(string, string), int>(merges.Count);
        for (var i = 0; i < merges.Count; i++)
        {
            var merge = merges[i];
            if (!ids.ContainsKey(merge.Left + merge.Right))
            {
                throw new ArgumentException($"Merge '{merge.Left} {merge.Right}' produces a token missing from the vocabulary.", nameof(merges));
            }
            ranks.TryAdd(merge, i);
        }
        MergeRanks = ranks;

        SpecialTokenIds = Enumerable.Range(0, tokens.Count)
            .Where(i => tokenTypes[i] is BpeTokenType.Control or BpeTokenType.UserDefined)
            .ToArray();
    }

    public IReadOnlyList<string> Tokens { get; }
    public IReadOnlyList<BpeTokenType> TokenTypes { get; }
    public IReadOnlyList<(string Left, string Right)> Merges { get; }
    public int BosTokenId { get; }
    public int EosTokenId { get; }
    public int PadTokenId { get; }
    public int Count => Tokens.Count;

    /// <summary>Merges as GGUF stores them in <c>tokenizer.ggml.merges</c>.</summary>
    public IEnumerable<string> MergeStrings => Merges.Select(m => m.Left + " " + m.Right);

    /// <summary>
    /// The <c>tokenizer.ggml.*</c> metadata llama.cpp needs to tokenize exactly like <see cref="BpeTokenizer"/>:
    /// model "gpt2", pre-tokenizer "gpt-2", no automatic BOS (ChatML's <c>&lt;|im_start|&gt;</c> opens every prompt).
    /// </summary>
    public GgufTokenizer ToGgufTokenizer() => new(
        Model: "gpt2",
        Pre: Gpt2PreTokenizer.GgufPreTokenizerName,
        Tokens: Tokens,
        TokenTypes: TokenTypes.Select(t => (int)t).ToArray(),
        Merges: MergeStrings.ToArray(),
        BosTokenId: BosTokenId,
        EosTokenId: EosTokenId,
        PaddingTokenId: PadTokenId,
        EotTokenId: TryGetId(ImEndToken, out var imEnd) ? imEnd : null,
        AddBosToken: false,
        AddEosToken: false);

    /// <summary>Reads a vocabulary back from GGUF tokenizer metadata (a "gpt2" model).</summary>
    public static BpeVocabulary FromGgufTokenizer(GgufTokenizer tokenizer)
    {
        if (tokenizer.Model != "gpt2")
        {
            throw new NotSupportedException($"Only byte-level BPE (gpt2) vocabularies are supported, not '{tokenizer.Model}'.");
        }
        var merges = tokenizer.Merges.Select(line =>
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            return space <= 0 ? throw new FormatException($"Bad merge '{line}'.") : (line[..space], line[(space + 1)..]);
        }).ToArray();
        return new BpeVocabulary(tokenizer.Tokens, tokenizer.TokenTypes.Select(t => (BpeTokenType)t).ToArray(), merges,
            tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PaddingTokenId ?? tokenizer.EosTokenId);
    }

    internal IReadOnlyDictionary<string, int> TokenIds { get; }
    internal IReadOnlyDictionary<(string, string), int> MergeRanks { get; }
    internal IReadOnlyList<int> SpecialTokenIds { get; }

    public int IdOf(string token) =>
        TokenIds.TryGetValue(token, out var id) ? id : throw new KeyNotFoundException($"Token '{token}' is not in the vocabulary.");

    public bool TryGetId(string token, out int id) => TokenIds.TryGetValue(token, out id);
}
