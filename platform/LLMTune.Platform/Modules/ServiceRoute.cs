namespace LLMTune.Platform.Modules;

/// <summary>
/// A public path a module answers (YARP route syntax, e.g. <c>/v1/files/{**rest}</c>). In split mode the gateway
/// forwards it to the cluster named after the module (<c>ReverseProxy:Clusters:&lt;module&gt;</c>); a module hosted in the
/// gateway's own process answers it locally. <paramref name="Timeout"/> overrides the gateway's default request timeout;
/// <paramref name="AuthorizationPolicy"/> names the policy the gateway checks before forwarding (e.g. the operator's for
/// an <c>/admin</c> route; by default an authenticated workspace key).
/// </summary>
public sealed record ServiceRoute(string Path, TimeSpan? Timeout = null, string? AuthorizationPolicy = null);

/// <summary>Every module's routes, whether or not it runs in this process: what the gateway can forward.</summary>
public sealed class ServiceRouteTable(IEnumerable<IServiceModule> modules)
{
    public IReadOnlyList<(string Module, ServiceRoute Route)> Routes { get; } =
        modules.SelectMany(m => m.Routes.Select(r => (m.Name, r))).ToList();
}
