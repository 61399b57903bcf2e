using System.Text;
using LLama;
using LLama.Common;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;
using LLMTune.Engine.TinyModel;
using LLMTune.Engine.Tokenization;

namespace LLMTune.Engine.Tests.Tokenization;

/// <summary>
/// Our encoder must produce the very ids llama.cpp produces for a GGUF carrying our vocabulary, or a model trained on
/// our ids would be served different ids. The vocabulary is learned from the tiny model's corpus and written into a
/// small random llama GGUF; llama.cpp (through LLamaSharp) then tokenizes the same strings.
/// </summary>
public sealed class LlamaCppTokenizerParityTests
{
    private static readonly string[] TrickyStrings =
    [
        "", " ", "  ", "\n", "\n\n\n", " \n ", "\t\tindented", "trailing spaces   ", "a  b   c    d",
        "Hello, world!", "it's they're we've I'm you'll he'd", "IT'S SHOUTING'S", "'quoted' \"double\"",
        "12345 + 67890 = 80235", "3.14159 and 2,718", "x=1;y=2;z=x+y", "<html><body>tag</body></html>",
        "e-mail: someone@example.com", "C# on .NET 10", "naïve café résumé", "Ünïcödé ÀÉÎÕÜ", "日本語のテキスト",
        "Привет, мир", "مرحبا بالعالم", "emoji 🙂🚀 and ✓", "mixed🙂letters", "ÿ\u00A0non-breaking\u00A0space",
        "\u2028line separator", "tab\tnew\nline\rcarriage", "!!!???...", "___init___", "a'b'c'd", "ˈmodifier letter",
        "①②③ circled", "Ⅻ roman numeral", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "text<|im_end|>more<|endoftext|>end", "<|im_start|", "<|im_start|><|im_start|>",
    ];

    [Fact]
    public void Encoder_matches_llama_cpp_on_many_strings()
    {
        var corpus = TinyCorpus.Generate(new TinyCorpusOptions { Seed = 11, TrainingExamples = 3_000 });
        var texts = corpus.TrainingTurns.Select(t => TinyChatFormat.Prompt(t.System, t.Example.Prompt) + TinyChatFormat.Completion(t.Example.Answer)).ToList();
        var vocabulary = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabularySize = 400 }, TestContext.Current.CancellationToken);
        var tokenizer = new BpeTokenizer(vocabulary);

        var path = TestModels.NewPath("tokenizer-parity");
        LlamaGgufBuilder.WriteRandom(path, TestModels.Small with { Tokenizer = vocabulary.ToGgufTokenizer(), Name = "tokenizer-parity" });
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { ContextSize = 64, VocabOnly = true });

        var samples = TrickyStrings
            .Concat(texts.Take(400))
            .Concat(corpus.HeldOut.Select(e => e.Prompt + " " + e.Answer))
            .ToList();
        var mismatches = new List<string>();
        var compared = 0;
        foreach (var sample in samples)
        {
            foreach (var parseSpecial in new[] { true, false })
            {
                var ours = tokenizer.Encode(sample, parseSpecial);
                var theirs = weights.NativeHandle.Tokenize(sample, false, parseSpecial, Encoding.UTF8).Select(t => (int)t).ToList();
                compared++;
                if (!ours.SequenceEqual(theirs))
                {
                    mismatches.Add($"{(parseSpecial ? "special" : "literal")} '{sample}': ours [{string.Join(',', ours)}] llama.cpp [{string.Join(',', theirs)}]");
                }
            }
        }
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of {compared} differ:\n" + string.Join('\n', mismatches.Take(10)));
        Assert.True(compared > 1_000);
    }

    [Fact]
    public void Decoded_pieces_match_llama_cpp()
    {
        var vocabulary = BpeTrainer.Train(["the cat sat on the mat", "über café 🙂"], new BpeTrainerOptions { VocabularySize = 280 }, TestContext.Current.CancellationToken);
        var tokenizer = new BpeTokenizer(vocabulary);
        var path = TestModels.NewPath("tokenizer-pieces");
        LlamaGgufBuilder.WriteRandom(path, TestModels.Small with { Tokenizer = vocabulary.ToGgufTokenizer(), Name = "tokenizer-pieces" });
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { ContextSize = 64, VocabOnly = true });

        var buffer = new byte[64];
        for (var id = 0; id < vocabulary.Count; id++)
        {
            var length = weights.NativeHandle.TokenToSpan((LLama.Native.LLamaToken)id, buffer, 0, true);
            Assert.Equal(tokenizer.TokenBytes(id, renderSpecial: true), buffer.AsSpan(0, (int)length).ToArray());
        }
        Assert.Equal(vocabulary.EosTokenId, (int)weights.Vocab.EOS!.Value);
        Assert.False(weights.Vocab.ShouldAddBOS);
    }
}
