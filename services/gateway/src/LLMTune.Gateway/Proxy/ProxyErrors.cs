using System.Net.Sockets;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace LLMTune.Gateway.Proxy;

/// <summary>
/// Tells "the service is down, come back shortly" (503 <c>service_unavailable</c> with <c>Retry-After</c>) from "the
/// service failed this request" (502 <c>upstream_error</c>), both in the error shape. A cluster with no healthy
/// destination, or one whose destination refuses the connection (nothing sent, so nothing half-done), is unavailable;
/// a destination that dies mid-request is a bad gateway, reported at once.
/// </summary>
public static class ProxyErrors
{
    /// <summary>Retry-After when the cluster has no active health check to say when it will look again.</summary>
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(5);

    public static async Task TranslateAsync(HttpContext context, Func<Task> next)
    {
        var proxy = context.Features.Get<IReverseProxyFeature>();
        var cluster = proxy?.Cluster?.Config;
        var service = cluster?.ClusterId ?? "the service";
        if (proxy is not null)
        {
            // YARP still offered destinations its health checks had marked unhealthy (seen with one destination, 2.3);
            // a request to a service known to be down is answered here rather than sent to it.
            var healthy = proxy.AvailableDestinations
                .Where(d => d.Health.Active != DestinationHealth.Unhealthy && d.Health.Passive != DestinationHealth.Unhealthy)
                .ToList();
            if (healthy.Count == 0)
            {
                throw Unavailable(service, cluster);
            }

            if (healthy.Count != proxy.AvailableDestinations.Count)
            {
                proxy.AvailableDestinations = healthy;
            }
        }

        await next();
        if (context.Response.HasStarted || context.Features.Get<IForwarderErrorFeature>() is not { } failure)
        {
            return; // answered, or a stream cut mid-way (its client sees the connection end)
        }

        if (failure.Error == ForwarderError.NoAvailableDestinations || IsConnectionRefused(failure.Exception))
        {
            throw Unavailable(service, cluster);
        }

        if (failure.Error is ForwarderError.RequestTimedOut)
        {
            throw new ApiException(StatusCodes.Status504GatewayTimeout, "upstream_timeout", $"{Capitalized(service)} did not answer in time.");
        }

        if (failure.Error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled)
        {
            return; // the client left
        }

        throw new ApiException(StatusCodes.Status502BadGateway, "upstream_error", $"{Capitalized(service)} failed while handling the request; it was not completed.");
    }

    private static ApiException Unavailable(string service, Yarp.ReverseProxy.Configuration.ClusterConfig? cluster) =>
        new(StatusCodes.Status503ServiceUnavailable, "service_unavailable", $"{Capitalized(service)} is unavailable right now; retry shortly.")
        {
            RetryAfter = cluster?.HealthCheck?.Active is { Enabled: true, Interval: { } interval } ? interval : DefaultRetryAfter,
        };

    private static bool IsConnectionRefused(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostNotFound or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                return true;
            }
        }

        return false;
    }

    private static string Capitalized(string service) => service.Length == 0 ? service : char.ToUpperInvariant(service[0]) + service[1..];
}
