using MassTransit;
using Microsoft.AspNetCore.Builder;

namespace LLMTune.Platform.Modules;

/// <summary>
/// One service of LLMTune (gateway, inference, batch, ...). The host composes modules: all of them in one
/// process (<c>--target all</c>) or a few per process (<c>--target inference</c>), see docs/architecture.md "One binary, many targets".
/// </summary>
public interface IServiceModule
{
    /// <summary>Target name used by <c>serve --target</c>, e.g. "gateway".</summary>
    string Name { get; }

    /// <summary>The public paths this module owns, for the gateway to forward in split mode (see <see cref="ServiceRoute"/>).</summary>
    IReadOnlyList<ServiceRoute> Routes => [];

    /// <summary>Registers the module's services and validated options.</summary>
    void AddServices(WebApplicationBuilder builder, HostTopology topology);

    /// <summary>Registers the module's MassTransit consumers (one readable list per module).</summary>
    void AddConsumers(IBusRegistrationConfigurator bus) { }

    /// <summary>Maps the module's HTTP endpoints.</summary>
    void MapEndpoints(WebApplication app, HostTopology topology);
}
