using System.Net;
using System.Net.Sockets;

namespace LLMTune.Platform.Http;

/// <summary>A destination resolved to an address that the allow-list refuses (loopback, private, metadata, ...).</summary>
public sealed class DestinationRefusedException(string host, IPAddress address)
    : Exception($"'{host}' resolves to {address}, a loopback, private, link-local, shared, reserved or metadata address; such hosts must be allow-listed.")
{
    public string Host { get; } = host;
    public IPAddress Address { get; } = address;
}

/// <summary>
/// Outbound connections that cannot reach inside the network (SSRF): the host is resolved once, every address must pass
/// the <see cref="HostAllowList"/>, and the socket connects to the checked address itself, so a second DNS answer
/// (rebinding) never gets a say. Plug <see cref="ConnectCallback"/> into a <see cref="SocketsHttpHandler"/>.
/// </summary>
public static class GuardedConnection
{
    /// <summary>A handler that connects only to allowed addresses; no proxy (it would make the checks meaningless), no cookies.</summary>
    public static SocketsHttpHandler CreateHandler(HostAllowList allow, bool allowRedirects = false) => new()
    {
        AllowAutoRedirect = allowRedirects,
        UseProxy = false,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(15),
        ConnectCallback = ConnectCallback(allow),
    };

    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ConnectCallback(HostAllowList allow) =>
        async (context, ct) =>
        {
            var host = context.DnsEndPoint.Host;
            var addresses = await ResolveAsync(host, ct).ConfigureAwait(false);
            EnsureAllowed(host, addresses, allow);
            SocketException? last = null;
            foreach (var address in addresses)
            {
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    last = e;
                    socket.Dispose();
                }
            }

            throw last ?? new SocketException((int)SocketError.HostNotFound);
        };

    /// <summary>An address literal as itself, <c>localhost</c> names as loopback (RFC 6761, whatever DNS says), otherwise the DNS answer.</summary>
    public static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
        {
            return [literal];
        }

        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            return [IPAddress.Loopback, IPAddress.IPv6Loopback];
        }

        var addresses = await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
        return addresses.Length > 0 ? addresses : throw new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>Every address must pass: a name that resolves to one public and one internal address is refused.</summary>
    /// <exception cref="DestinationRefusedException">One of the addresses is refused.</exception>
    public static void EnsureAllowed(string host, IEnumerable<IPAddress> addresses, HostAllowList allow)
    {
        if (addresses.FirstOrDefault(a => !allow.Allows(host, a)) is { } refused)
        {
            throw new DestinationRefusedException(host, refused);
        }
    }

    /// <summary>The refusal behind a failed request, if that is why it failed.</summary>
    public static DestinationRefusedException? RefusalIn(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is DestinationRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }
}
