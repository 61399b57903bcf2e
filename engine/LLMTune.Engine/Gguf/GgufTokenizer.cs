using System.Text;

namespace LLMTune.Engine.Gguf;

/// <summary>llama.cpp token types (<c>tokenizer.ggml.token_type</c>).</summary>
public enum GgufTokenType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// The <c>tokenizer.ggml.*</c> metadata of a GGUF model. For <c>gpt2</c> (byte-level BPE) models the tokens and
/// merges are written in GPT-2's byte→unicode alphabet (see <see cref="Gpt2ByteEncoding"/>).
/// </summary>
public sealed record GgufTokenizer(
    string Model,
    string Pre,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<int> TokenTypes,
    IReadOnlyList<string> Merges,
    int BosTokenId,
    int EosTokenId,
    int? PaddingTokenId = null,
    int? EotTokenId = null,
    bool AddBosToken = false,
    bool AddEosToken = false)
{
    public const string EndOfText = "<|endoftext|>";
    public const string ImStart = "<|im_start|>";
    public const string ImEnd = "<|im_end|>";

    /// <summary>A few common English merges so the byte-level test vocabulary is a real BPE and not bytes only.</summary>
    public static readonly IReadOnlyList<(string Left, string Right)> DefaultMerges =
    [
        (" ", "t"), ("h", "e"), ("i", "n"), (" ", "a"), ("e", "r"), ("o", "n"), (" t", "he"), ("r", "e"),
        (" ", "s"), ("a", "t"), ("o", "r"), ("e", "n"), (" ", "w"), ("i", "s"), (" ", "o"), ("in", "g"),
    ];

    public int IdOf(string token)
    {
        for (var i = 0; i < Tokens.Count; i++)
        {
            if (Tokens[i] == token)
            {
                return i;
            }
        }

        throw new KeyNotFoundException($"Token '{token}' is not in the vocabulary.");
    }

    /// <summary>
    /// A byte-level BPE vocabulary: the 256 byte tokens, one token per merge (in merge order), then the special
    /// tokens as control tokens. Merges are given as plain text pairs. BOS/EOS/padding name special tokens
    /// (Qwen-style ChatML defaults: BOS and padding <c>&lt;|endoftext|&gt;</c>, EOS <c>&lt;|im_end|&gt;</c>).
    /// </summary>
    public static GgufTokenizer CreateByteLevel(
        IEnumerable<(string Left, string Right)>? merges = null,
        IEnumerable<string>? specialTokens = null,
        string bosToken = EndOfText,
        string eosToken = ImEnd,
        string? paddingToken = EndOfText,
        string pre = "gpt-2")
    {
        var tokens = new List<string>();
        var types = new List<int>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        void Add(string token, GgufTokenType type)
        {
            if (index.TryAdd(token, tokens.Count))
            {
                tokens.Add(token);
                types.Add((int)type);
            }
        }

        for (var b = 0; b < 256; b++)
        {
            Add(Gpt2ByteEncoding.Encode([(byte)b]), GgufTokenType.Normal);
        }

        var mergeLines = new List<string>();
        foreach (var (left, right) in merges ?? DefaultMerges)
        {
            string l = Gpt2ByteEncoding.Encode(left), r = Gpt2ByteEncoding.Encode(right);
            if (!index.ContainsKey(l) || !index.ContainsKey(r))
            {
                throw new ArgumentException($"Merge '{left}' + '{right}' uses a token no earlier merge made.", nameof(merges));
            }

            mergeLines.Add($"{l} {r}");
            Add(l + r, GgufTokenType.Normal);
        }

        foreach (var special in specialTokens ?? [EndOfText, ImStart, ImEnd])
        {
            Add(special, GgufTokenType.Control);
        }

        return new GgufTokenizer(
            Model: "gpt2",
            Pre: pre,
            Tokens: tokens,
            TokenTypes: types,
            Merges: mergeLines,
            BosTokenId: index[bosToken],
            EosTokenId: index[eosToken],
            PaddingTokenId: paddingToken is null ? null : index[paddingToken],
            EotTokenId: index.TryGetValue(ImEnd, out var imEnd) ? imEnd : null);
    }

    /// <summary>Writes the <c>tokenizer.ggml.*</c> keys.</summary>
    public void WriteTo(GgufMetadata metadata)
    {
        if (TokenTypes.Count != Tokens.Count)
        {
            throw new InvalidOperationException($"{Tokens.Count} tokens but {TokenTypes.Count} token types.");
        }

        metadata.Set("tokenizer.ggml.model", Model);
        metadata.Set("tokenizer.ggml.pre", Pre);
        metadata.Set("tokenizer.ggml.tokens", GgufValue.StringArray(Tokens));
        metadata.Set("tokenizer.ggml.token_type", GgufValue.Int32Array(TokenTypes));
        if (Merges.Count > 0 || Model == "gpt2")
        {
            metadata.Set("tokenizer.ggml.merges", GgufValue.StringArray(Merges));
        }

        metadata.Set("tokenizer.ggml.bos_token_id", (uint)BosTokenId);
        metadata.Set("tokenizer.ggml.eos_token_id", (uint)EosTokenId);
        if (PaddingTokenId is { } pad)
        {
            metadata.Set("tokenizer.ggml.padding_token_id", (uint)pad);
        }

        if (EotTokenId is { } eot)
        {
            metadata.Set("tokenizer.ggml.eot_token_id", (uint)eot);
        }

        metadata.Set("tokenizer.ggml.add_bos_token", AddBosToken);
        metadata.Set("tokenizer.ggml.add_eos_token", AddEosToken);
    }

    public static GgufTokenizer FromGguf(GgufFile file)
    {
        var meta = file.Metadata;
        var tokens = meta.GetArray<string>("tokenizer.ggml.tokens");
        return new GgufTokenizer(
            Model: meta.GetString("tokenizer.ggml.model"),
            Pre: meta.GetStringOrDefault("tokenizer.ggml.pre", "default")!,
            Tokens: tokens,
            TokenTypes: meta.GetArrayOrNull<int>("tokenizer.ggml.token_type") ?? Enumerable.Repeat((int)GgufTokenType.Normal, tokens.Length).ToArray(),
            Merges: meta.GetArrayOrNull<string>("tokenizer.ggml.merges") ?? [],
            BosTokenId: (int)(meta.GetInt64OrNull("tokenizer.ggml.bos_token_id") ?? -1),
            EosTokenId: (int)(meta.GetInt64OrNull("tokenizer.ggml.eos_token_id") ?? -1),
            PaddingTokenId: (int?)meta.GetInt64OrNull("tokenizer.ggml.padding_token_id"),
            EotTokenId: (int?)meta.GetInt64OrNull("tokenizer.ggml.eot_token_id"),
            AddBosToken: meta.GetBoolOrNull("tokenizer.ggml.add_bos_token") ?? false,
            AddEosToken: meta.GetBoolOrNull("tokenizer.ggml.add_eos_token") ?? false);
    }
}

/// <summary>
/// GPT-2's reversible byte→unicode alphabet used by byte-level BPE vocabularies: printable bytes map to
/// themselves, the others to code points from U+0100 upwards (so a space is 'Ġ', a newline 'Ċ').
/// </summary>
public static class Gpt2ByteEncoding
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    public static char CharOf(byte value) => ByteToChar[value];

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }

        return new string(chars);
    }

    public static string Encode(string text) => Encode(Encoding.UTF8.GetBytes(text));

    public static byte[] Decode(string encoded) =>
        encoded.Select(c => CharToByte.TryGetValue(c, out var b) ? b : throw new ArgumentException($"'{c}' is not in the byte alphabet.", nameof(encoded))).ToArray();

    private static char[] BuildTable()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }

        return table;
    }
}
