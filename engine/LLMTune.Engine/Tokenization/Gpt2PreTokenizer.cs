using System.Globalization;
using System.Text;

namespace LLMTune.Engine.Tokenization;

/// <summary>
/// Splits text into words the way llama.cpp does for <c>tokenizer.ggml.pre</c> = "gpt-2", i.e. GPT-2's pattern
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>, evaluated over code points
/// (not UTF-16 units) with llama.cpp's whitespace set, so that the parity with its tokenizer holds beyond ASCII.
/// </summary>
public static class Gpt2PreTokenizer
{
    /// <summary>The <c>tokenizer.ggml.pre</c> value whose split this class reproduces.</summary>
    public const string GgufPreTokenizerName = "gpt-2";

    private enum CharClass { None, Letter, Number, Whitespace, Other }

    public static List<string> Split(string text)
    {
        var runes = new List<Rune>(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            runes.Add(rune);
        }

        var words = new List<string>();
        var builder = new StringBuilder();
        var pos = 0;
        var count = runes.Count;

        CharClass ClassAt(int i) => i < count ? Classify(runes[i]) : CharClass.None;
        int CodeAt(int i) => i < count ? runes[i].Value : -1;

        void Emit(int start, int end)
        {
            builder.Clear();
            for (var i = start; i < end; i++)
            {
                builder.Append(runes[i].ToString());
            }
            words.Add(builder.ToString());
        }

        while (pos < count)
        {
            var start = pos;
            var cpt = CodeAt(pos);

            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2)
            if (cpt == '\'' && pos + 1 < count)
            {
                var next = CodeAt(pos + 1);
                if (next is 's' or 't' or 'm' or 'd')
                {
                    pos += 2;
                    Emit(start, pos);
                    continue;
                }
                if (pos + 2 < count)
                {
                    var nextNext = CodeAt(pos + 2);
                    if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                    {
                        pos += 3;
                        Emit(start, pos);
                        continue;
                    }
                }
            }

            // An optional single space (U+0020 only) joins the letter, number or symbol run after it.
            var lead = cpt == ' ' ? ClassAt(pos + 1) : ClassAt(pos);
            if (lead is CharClass.Letter or CharClass.Number or CharClass.Other)
            {
                if (cpt == ' ')
                {
                    pos++;
                }
                while (ClassAt(pos) == lead)
                {
                    pos++;
                }
                Emit(start, pos);
                continue;
            }

            var whitespace = 0;
            while (ClassAt(pos + whitespace) == CharClass.Whitespace)
            {
                whitespace++;
            }
            if (whitespace > 1 && pos + whitespace < count)
            {
                // \s+(?!\S): leave the last whitespace to start the next word.
                pos += whitespace - 1;
                Emit(start, pos);
                continue;
            }
            if (whitespace > 0)
            {
                pos += whitespace;
                Emit(start, pos);
                continue;
            }

            pos++;
            Emit(start, pos);
        }
        return words;
    }

    private static CharClass Classify(Rune rune)
    {
        if (IsLlamaCppWhitespace(rune.Value))
        {
            return CharClass.Whitespace;
        }
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    // llama.cpp's whitespace table (unicode-data.cpp), which is what \s means in its splitter.
    private static bool IsLlamaCppWhitespace(int cpt) =>
        cpt is >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;
}
