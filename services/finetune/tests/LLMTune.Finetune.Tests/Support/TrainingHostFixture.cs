namespace LLMTune.Finetune.Tests.Support;

/// <summary>One host with the default settings per test class (xunit class fixture), for classes that train.</summary>
public sealed class TrainingHostFixture : IAsyncLifetime
{
    public FinetuneHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await FinetuneHost.StartAsync();

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
