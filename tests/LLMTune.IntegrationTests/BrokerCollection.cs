namespace LLMTune.IntegrationTests;

/// <summary>
/// Tests on the one shared RabbitMQ node run one class at a time: hosts of the same services declare the same queues,
/// and two at once would take each other's messages.
/// </summary>
[CollectionDefinition(Name)]
public sealed class BrokerCollection : ICollectionFixture<RabbitMqBroker>
{
    public const string Name = "RabbitMQ";
}
