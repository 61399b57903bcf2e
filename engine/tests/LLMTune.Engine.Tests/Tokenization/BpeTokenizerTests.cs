using LLMTune.Engine.Tokenization;

namespace LLMTune.Engine.Tests.Tokenization;

public sealed class BpeTokenizerTests
{
    private static readonly string[] Corpus =
    [
        "the cat sat on the mat", "the dog ate the bone", "What is 12 plus 34?", "Hello there! How are you?",
        "they're here, it's fine", "the the the then there these", "  spaced   out\n\nlines\t\ttabs",
    ];

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("it's they're I'll", new[] { "it", "'s", " they", "'re", " I", "'ll" })]
    [InlineData("12 + 345=", new[] { "12", " +", " 345", "=" })]
    [InlineData("a  b", new[] { "a", " ", " b" })]
    [InlineData("a \n\nb  ", new[] { "a", " \n", "\n", "b", "  " })]
    [InlineData("héllo wörld!!", new[] { "héllo", " wörld", "!!" })]
    [InlineData("x\u00A0y", new[] { "x", "\u00A0", "y" })]
    [InlineData("Don'T", new[] { "Don", "'", "T" })]
    public void Pre_tokenizer_splits_like_gpt2(string text, string[] expected)
    {
        Assert.Equal(expected, Gpt2PreTokenizer.Split(text));
    }

    [Fact]
    public void Training_is_deterministic_and_keeps_digits_single()
    {
        var options = new BpeTrainerOptions { VocabularySize = 300 };
        var first = BpeTrainer.Train(Corpus, options, TestContext.Current.CancellationToken);
        var second = BpeTrainer.Train(Corpus.ToArray(), options, TestContext.Current.CancellationToken);
        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Merges, second.Merges);
        Assert.True(first.Merges.Count > 10);
        Assert.DoesNotContain(first.Merges, m => (m.Left + m.Right).Any(char.IsAsciiDigit));
        Assert.Equal(BpeVocabulary.ImEndToken, first.Tokens[first.EosTokenId]);
        Assert.Equal(BpeVocabulary.EndOfTextToken, first.Tokens[first.BosTokenId]);
        Assert.Equal(BpeTokenType.Control, first.TokenTypes[first.IdOf(BpeVocabulary.ImStartToken)]);
    }

    [Fact]
    public void Encoding_uses_merges_and_round_trips()
    {
        var vocabulary = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabularySize = 320 }, TestContext.Current.CancellationToken);
        var tokenizer = new BpeTokenizer(vocabulary);
        var ids = tokenizer.Encode("the cat");
        Assert.True(ids.Count < "the cat".Length, "merges should shorten a frequent phrase");
        Assert.Equal(["5", "7"], tokenizer.Encode("57").Select(id => vocabulary.Tokens[id]));

        string[] samples = ["the cat sat", "Ünïcödé → ✓ 🙂", "tabs\tand\nnewlines  ", "What is 98 - 12?", ""];
        foreach (var sample in samples)
        {
            Assert.Equal(sample, tokenizer.Decode(tokenizer.Encode(sample)));
        }
    }

    [Fact]
    public void Special_tokens_are_parsed_only_when_asked()
    {
        var vocabulary = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabularySize = 300 }, TestContext.Current.CancellationToken);
        var tokenizer = new BpeTokenizer(vocabulary);
        var text = "<|im_start|>user\nhi<|im_end|>\n";
        var parsed = tokenizer.Encode(text, parseSpecial: true);
        Assert.Equal(vocabulary.IdOf(BpeVocabulary.ImStartToken), parsed[0]);
        Assert.Contains(vocabulary.IdOf(BpeVocabulary.ImEndToken), parsed);
        Assert.Equal("user\nhi\n", tokenizer.Decode(parsed));
        Assert.Equal(text, tokenizer.Decode(parsed, renderSpecial: true));

        var literal = tokenizer.Encode(text, parseSpecial: false);
        Assert.DoesNotContain(vocabulary.IdOf(BpeVocabulary.ImStartToken), literal);
        Assert.Equal(text, tokenizer.Decode(literal));
    }
}
