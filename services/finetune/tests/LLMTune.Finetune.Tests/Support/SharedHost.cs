namespace LLMTune.Finetune.Tests.Support;

/// <summary>One host per test class (xunit class fixture).</summary>
public sealed class SharedHost : IAsyncLifetime
{
    public FinetuneHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await FinetuneHost.StartAsync(new Dictionary<string, string?>
    {
        ["Finetune:MaxUploadBytes"] = "4096",
        ["Outbound:AllowedHosts:0"] = "hooks.internal",
    });

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
