namespace LLMTune.Engine.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ Unicode mapping: every byte becomes one printable code point so that
/// byte-level BPE tokens are plain strings (llama.cpp's "gpt2" tokenizer model uses the same table).
/// </summary>
public static class ByteLevelEncoding
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        var assigned = new bool[256];
        // Printable Latin-1 bytes keep their own code point; the rest are shifted to 256 and up, in byte order.
        static bool KeepsItself(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        for (var b = 0; b < 256; b++)
        {
            if (KeepsItself(b))
            {
                table[b] = (char)b;
                assigned[b] = true;
            }
        }
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            if (!assigned[b])
            {
                table[b] = (char)next++;
            }
        }
        return table;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            map[ByteToChar[b]] = (byte)b;
        }
        return map;
    }

    /// <summary>The printable character standing for <paramref name="value"/>.</summary>
    public static char Encode(byte value) => ByteToChar[value];

    /// <summary>Maps UTF-8 bytes to their byte-level string.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }
        return new string(chars);
    }

    /// <summary>Maps text to the byte-level string of its UTF-8 bytes.</summary>
    public static string EncodeText(string text) => Encode(System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Appends the bytes a byte-level string stands for; false if it holds a character outside the table.</summary>
    public static bool TryDecode(string byteLevel, List<byte> destination)
    {
        foreach (var c in byteLevel)
        {
            if (!CharToByte.TryGetValue(c, out var b))
            {
                return false;
            }
            destination.Add(b);
        }
        return true;
    }
}
