using System.Net;
using System.Net.Sockets;

namespace LLMTune.Platform.Http;

/// <summary>
/// Which addresses an outbound request (a remote dataset, a webhook) may connect to. Public addresses always; loopback,
/// private, link-local, shared (CGNAT), multicast, reserved, documentation and cloud metadata addresses only when the
/// host or address is allow-listed. Used with <see cref="GuardedConnection"/>, which checks the address actually connected to.
/// </summary>
public sealed class HostAllowList
{
    private readonly HashSet<string> _hosts = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<IPNetwork> _networks = [];

    public HostAllowList(IEnumerable<string> entries)
    {
        foreach (var entry in entries.Select(e => e.Trim()).Where(e => e.Length > 0))
        {
            if (IPNetwork.TryParse(entry, out var network))
            {
                _networks.Add(network);
            }
            else if (IPAddress.TryParse(entry.Trim('[', ']'), out var address))
            {
                address = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
                _networks.Add(new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                _hosts.Add(entry);
            }
        }
    }

    public static bool IsValidEntry(string entry) =>
        IPNetwork.TryParse(entry, out _) || IPAddress.TryParse(entry.Trim('[', ']'), out _) || Uri.CheckHostName(entry) == UriHostNameType.Dns;

    public bool AllowsHost(string host) => _hosts.Contains(host.Trim('[', ']'));

    /// <summary>Whether the host itself is on the list: by name, or as an address inside a listed address or range.</summary>
    public bool Lists(string host)
    {
        if (AllowsHost(host))
        {
            return true;
        }

        return IPAddress.TryParse(host.Trim('[', ']'), out var address)
            && _networks.Any(n => n.Contains(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address));
    }

    /// <summary>Whether a connection to <paramref name="address"/> (reached through <paramref name="host"/>) is permitted.</summary>
    public bool Allows(string host, IPAddress address)
    {
        if (AllowsHost(host))
        {
            return true;
        }

        var normalised = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return _networks.Any(n => n.Contains(normalised)) || !IsInternal(normalised);
    }

    private static readonly IPNetwork[] InternalV4 =
    [
        IPNetwork.Parse("0.0.0.0/8"),        // "this network"
        IPNetwork.Parse("10.0.0.0/8"),       // private
        IPNetwork.Parse("100.64.0.0/10"),    // shared address space (carrier NAT)
        IPNetwork.Parse("127.0.0.0/8"),      // loopback
        IPNetwork.Parse("169.254.0.0/16"),   // link-local, includes the 169.254.169.254 metadata service
        IPNetwork.Parse("172.16.0.0/12"),    // private
        IPNetwork.Parse("192.0.0.0/24"),     // IETF protocol assignments
        IPNetwork.Parse("192.0.2.0/24"),     // documentation (TEST-NET-1)
        IPNetwork.Parse("192.88.99.0/24"),   // 6to4 relay anycast
        IPNetwork.Parse("192.168.0.0/16"),   // private
        IPNetwork.Parse("198.18.0.0/15"),    // benchmarking
        IPNetwork.Parse("198.51.100.0/24"),  // documentation (TEST-NET-2)
        IPNetwork.Parse("203.0.113.0/24"),   // documentation (TEST-NET-3)
        IPNetwork.Parse("224.0.0.0/4"),      // multicast
        IPNetwork.Parse("240.0.0.0/4"),      // reserved and broadcast
        IPNetwork.Parse("168.63.129.16/32"), // Azure's platform metadata address
    ];

    private static readonly IPNetwork[] InternalV6 =
    [
        IPNetwork.Parse("::/128"),           // unspecified
        IPNetwork.Parse("::1/128"),          // loopback
        IPNetwork.Parse("::/96"),            // IPv4-compatible (deprecated) embeds arbitrary IPv4
        IPNetwork.Parse("fc00::/7"),         // unique local, includes AWS's fd00:ec2::254 metadata address
        IPNetwork.Parse("fe80::/10"),        // link-local
        IPNetwork.Parse("ff00::/8"),         // multicast
        IPNetwork.Parse("64:ff9b::/96"),     // NAT64 can reach internal IPv4
        IPNetwork.Parse("2002::/16"),        // 6to4 embeds arbitrary IPv4
        IPNetwork.Parse("2001::/32"),        // Teredo embeds arbitrary IPv4
        IPNetwork.Parse("2001:db8::/32"),    // documentation
        IPNetwork.Parse("100::/64"),         // discard-only
    ];

    /// <summary>True for every address that is not plainly public.</summary>
    public static bool IsInternal(IPAddress address)
    {
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return a.AddressFamily switch
        {
            AddressFamily.InterNetwork => InternalV4.Any(n => n.Contains(a)),
            AddressFamily.InterNetworkV6 => InternalV6.Any(n => n.Contains(a)) || a.IsIPv6SiteLocal,
            _ => true,
        };
    }
}
