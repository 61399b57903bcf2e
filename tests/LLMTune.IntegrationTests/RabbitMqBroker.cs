using Testcontainers.RabbitMq;

namespace LLMTune.IntegrationTests;

/// <summary>
/// The real broker for integration tests: <c>RABBITMQ_URL</c> (./test.sh starts a private node and sets it), else a
/// Testcontainers RabbitMQ where Docker runs; otherwise the tests skip and say why.
/// </summary>
public sealed class RabbitMqBroker : IAsyncLifetime
{
    private RabbitMqContainer? container;

    public string? Url { get; private set; }
    public string? Unavailable { get; private set; }

    public async ValueTask InitializeAsync()
    {
        Url = Environment.GetEnvironmentVariable("RABBITMQ_URL");
        if (!string.IsNullOrEmpty(Url))
        {
            return;
        }

        try
        {
            container = new RabbitMqBuilder("rabbitmq:3.13-alpine").Build();
            await container.StartAsync();
            Url = container.GetConnectionString();
        }
        catch (Exception e)
        {
            Unavailable = $"No RabbitMQ: RABBITMQ_URL is unset and Docker is unavailable ({e.GetType().Name}). Run ./test.sh, which starts a private node.";
        }
    }

    public string RequireUrl()
    {
        if (Url is null)
        {
            Assert.Skip(Unavailable!);
        }

        return Url!;
    }

    public async ValueTask DisposeAsync()
    {
        if (container is not null)
        {
            await container.DisposeAsync();
        }
    }
}
