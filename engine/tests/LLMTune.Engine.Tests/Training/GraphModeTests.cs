using LLMTune.Engine.Training;

namespace LLMTune.Engine.Tests.Training;

public sealed class GraphModeTests
{
    /// <summary>
    /// Models too deep for ggml_opt's fixed-size static graphs are trained with graphs rebuilt every step;
    /// both ways must compute exactly the same steps.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rebuilt_per_step_graphs_train_exactly_like_static_graphs(bool fullModel)
    {
        var model = TrainingModel.Load(TrainingFixtures.TrainableModelPath);
        var (train, _) = TrainingFixtures.ReversalTask(trainCount: 40);
        var batches = SequencePacker.Pack(train, Enumerable.Range(0, train.Count).ToList(), 48, 2, pack: true);
        List<LoraPair> Loras() => fullModel ? [] : model.Weights.Where(w => w.Name.EndsWith("attn_v.weight", StringComparison.Ordinal)).Select(w =>
            new LoraPair(w.Name,
                new ModelTensor(w.Name + ".lora_a", [w.Shape[0], 2], Enumerable.Range(0, (int)w.Shape[0] * 2).Select(i => MathF.Sin(i) * 0.1f).ToArray()),
                new ModelTensor(w.Name + ".lora_b", [2, w.Shape[1]], new float[2 * w.Shape[1]]),
                2f)).ToList();

        float[] Losses(bool dynamic)
        {
            using var graph = new LlamaTrainingGraph(model.Shape, model.Weights, fullModel, Loras(), 48, 2, 2, new AdamWSettings(), dynamicGraphs: dynamic);
            Assert.Equal(dynamic, graph.UsesDynamicGraphs);
            return [.. batches.Take(5).Select(b => graph.TrainStep(b, 5e-3f)), graph.Evaluate(batches[0])];
        }

        var staticLosses = Losses(dynamic: false);
        var dynamicLosses = Losses(dynamic: true);

        Assert.True(staticLosses[^1] < staticLosses[0], "the steps must train");
        Assert.Equal(staticLosses, dynamicLosses);
    }
}
