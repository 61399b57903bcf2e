namespace LLMTune.Engine.Training;

/// <summary>An F32 tensor in host memory, shaped in ggml order (<c>ne0</c> first, the fastest-moving dimension).</summary>
internal sealed class ModelTensor(string name, long[] shape, float[] data)
{
    public string Name { get; } = name;

    public long[] Shape { get; } = shape;

    public float[] Data { get; } = data;

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
