using System.Net;
using System.Net.Sockets;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>
/// Where deliveries may go: https to public addresses; plain http and internal addresses only for hosts on
/// <c>Outbound:AllowedHosts</c> (the platform's one allow-list). The address check that counts runs on every connection (<see cref="GuardedConnection"/>);
/// the checks here only turn obviously refused URLs away early with a 400.
/// </summary>
public sealed class DestinationPolicy(IOptions<OutboundOptions> outbound)
{
    public HostAllowList AllowList { get; } = outbound.Value.AllowList();

    /// <summary>Why a delivery may not be sent to <paramref name="url"/>, or null when its scheme and host are fine.</summary>
    public string? SchemeProblem(Uri url)
    {
        if (!url.IsAbsoluteUri || url.Host.Length == 0 || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
        {
            return "The URL must be an absolute https URL.";
        }

        if (url.UserInfo.Length > 0)
        {
            return "The URL must not carry credentials.";
        }

        return url.Scheme == Uri.UriSchemeHttp && !AllowList.Lists(url.IdnHost)
            ? $"The URL must use https (plain http only for hosts on Outbound:AllowedHosts; '{url.IdnHost}' is not)."
            : null;
    }

    /// <summary>Checks a URL given to the API; throws a 400 naming <paramref name="param"/>.</summary>
    public async Task<Uri> ValidateAsync(string? url, string param, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri))
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", $"{param} must be an absolute https URL.", param);
        }

        if (SchemeProblem(uri) is { } problem)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", $"{param}: {problem}", param);
        }

        IPAddress[] addresses;
        try
        {
            addresses = await GuardedConnection.ResolveAsync(uri.IdnHost, ct);
        }
        catch (SocketException)
        {
            return uri; // not resolvable yet; each delivery checks again when it connects
        }

        try
        {
            GuardedConnection.EnsureAllowed(uri.IdnHost, addresses, AllowList);
        }
        catch (DestinationRefusedException refused)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "url_not_allowed", $"{param}: {refused.Message}", param);
        }

        return uri;
    }
}
