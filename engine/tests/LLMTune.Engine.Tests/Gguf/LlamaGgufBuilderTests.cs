using LLama;
using LLama.Common;
using LLama.Native;
using LLMTune.Engine.Gguf;
using LLMTune.Engine.Tests.Support;

namespace LLMTune.Engine.Tests.Gguf;

public sealed class LlamaGgufBuilderTests
{
    [Fact]
    public void A_random_model_reads_back_with_its_hyperparameters_tokenizer_and_weights()
    {
        var (path, builder) = TestModels.Get("small", TestModels.Small);

        var file = GgufFile.Read(path);

        Assert.Equal("llama", file.Architecture);
        Assert.Equal(builder.Weights.Hyperparameters, LlamaHyperparameters.FromGguf(file));
        Assert.Equal(builder.Tokenizer.Tokens, GgufTokenizer.FromGguf(file).Tokens);
        Assert.Equal(builder.Tokenizer.Merges, GgufTokenizer.FromGguf(file).Merges);
        Assert.Equal(builder.Weights.Layers[1].Key, file.GetTensor("blk.1.attn_k.weight").ToFloat32());
        // ne0 is the input dimension: K projects 64 inputs to 2 KV heads × 16.
        Assert.Equal([64L, 32L], file.GetTensor("blk.1.attn_k.weight").Shape);
        Assert.Equal([128L, 64L], file.GetTensor("blk.0.ffn_down.weight").Shape);
        Assert.Equal(builder.Weights.Hyperparameters.ParameterCount(), file.Tensors.Sum(t => t.ElementCount));
    }

    [Fact]
    public void LLamaSharp_loads_a_written_model_and_generates()
    {
        var (path, builder) = TestModels.Get("small", TestModels.Small);
        var hp = builder.Weights.Hyperparameters;

        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { ContextSize = 128 });
        Assert.Equal((ulong)hp.ParameterCount(), weights.ParameterCount);
        Assert.Equal(hp.VocabSize, weights.Vocab.Count);
        Assert.Equal(builder.Tokenizer.IdOf(GgufTokenizer.ImEnd), (int)weights.Vocab.EOS!.Value);

        // The merges and special tokens are live: " the" is one token, "<|im_start|>" parses as the control token.
        var the = weights.Tokenize(" the", add_bos: false, special: false, System.Text.Encoding.UTF8);
        Assert.Equal([builder.Tokenizer.IdOf(Gpt2ByteEncoding.Encode(" the"))], the.Select(t => (int)t));
        var special = weights.Tokenize("<|im_start|>", add_bos: false, special: true, System.Text.Encoding.UTF8);
        Assert.Equal([builder.Tokenizer.IdOf(GgufTokenizer.ImStart)], special.Select(t => (int)t));

        using var context = weights.CreateContext(new ModelParams(path) { ContextSize = 128, BatchSize = 64 });
        var prompt = weights.Tokenize("hello world", false, false, System.Text.Encoding.UTF8);
        var batch = new LLamaBatch();
        batch.AddRange(prompt, 0, LLamaSeqId.Zero, true);
        var generated = new List<int>();
        for (var step = 0; step < 8; step++)
        {
            Assert.Equal(DecodeResult.Ok, context.Decode(batch));
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            Assert.Equal(hp.VocabSize, logits.Length);
            Assert.All(logits.ToArray(), l => Assert.True(float.IsFinite(l)));
            var next = ArgMax(logits);
            generated.Add(next);
            batch.Clear();
            batch.Add(next, prompt.Length + step, LLamaSeqId.Zero, true);
        }

        Assert.Equal(8, generated.Count);
    }

    [Fact]
    public void F16_weights_load_and_round_trip_to_half_precision()
    {
        var options = TestModels.Small with { WeightType = GgmlType.F16, Name = "test-f16" };
        var (path, builder) = TestModels.Get("small-f16", options);

        var file = GgufFile.Read(path);
        var query = file.GetTensor("blk.0.attn_q.weight");
        Assert.Equal(GgmlType.F16, query.Type);
        Assert.Equal(builder.Weights.Layers[0].Query.Select(v => (float)(Half)v), query.ToFloat32());
        Assert.Equal(GgmlType.F32, file.GetTensor("blk.0.attn_norm.weight").Type);

        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { ContextSize = 64 });
        Assert.Equal(builder.Weights.Hyperparameters.VocabSize, weights.Vocab.Count);
    }

    [Theory]
    [InlineData(LLamaFtype.MOSTLY_Q8_0, GgmlType.Q8_0, 0.02)]
    [InlineData(LLamaFtype.MOSTLY_Q4_0, GgmlType.Q4_0, 0.15)]
    [InlineData(LLamaFtype.MOSTLY_Q4_1, GgmlType.Q4_1, 0.15)]
    [InlineData(LLamaFtype.MOSTLY_Q5_0, GgmlType.Q5_0, 0.08)]
    [InlineData(LLamaFtype.MOSTLY_Q6_K, GgmlType.Q6_K, 0.05)]
    [InlineData(LLamaFtype.MOSTLY_Q4_K_S, GgmlType.Q4_K, 0.15)]
    public void Tensors_quantized_by_llama_cpp_dequantize_close_to_the_originals(LLamaFtype ftype, GgmlType expected, double tolerance)
    {
        // E = 256 so every matrix row fills whole K-quant blocks.
        var options = TestModels.Small with { EmbeddingLength = 256, HeadCount = 4, HeadCountKv = 4, FeedForwardLength = 256, BlockCount = 1, InitStd = 0.1f, Name = "test-quant" };
        var (source, builder) = TestModels.Get("quant-source", options);
        var target = TestModels.NewPath("quantized");
        // LLamaSharp installs its native resolver when NativeApi is first touched; LLamaModelQuantizeParams has imports
        // of its own, so when this test runs first in the process it must not be the first native call.
        NativeApi.llama_empty_call();
        var parameters = LLamaModelQuantizeParams.Default();
        parameters.ftype = ftype;
        parameters.nthread = 1;
        parameters.pure = true;
        Assert.Equal(0u, NativeApi.llama_model_quantize(source, target, ref parameters));

        var tensor = GgufFile.Read(target).GetTensor("blk.0.ffn_up.weight");

        Assert.Equal(expected, tensor.Type);
        var original = builder.Weights.Layers[0].Up;
        var restored = tensor.ToFloat32();
        var maxError = original.Zip(restored).Max(p => Math.Abs(p.First - p.Second));
        Assert.InRange(maxError, 1e-7, tolerance);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
