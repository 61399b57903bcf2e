using LLMTune.Contracts;
using LLMTune.Platform.Bus;
using MassTransit;

namespace LLMTune.Gateway.ApiKeys;

/// <summary>Every gateway replica forgets its cached verification of a key revoked or rotated elsewhere.</summary>
public sealed class ApiKeyChangedConsumer(ApiKeyService keys) : IConsumer<ApiKeyChanged>
{
    public Task Consume(ConsumeContext<ApiKeyChanged> context)
    {
        keys.Forget(context.Message.KeyId);
        return Task.CompletedTask;
    }
}

public sealed class ApiKeyChangedConsumerDefinition(BusInstance instance) : EveryInstanceConsumerDefinition<ApiKeyChangedConsumer>(instance);
