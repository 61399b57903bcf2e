using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Http;
using Microsoft.Extensions.Options;

namespace LLMTune.Finetune.Features.Datasets;

/// <summary>
/// Downloads https datasets without letting a URL reach inside the network: every address the host resolves to must be
/// public (or allow-listed), the connection goes to an address that was checked (no second DNS lookup to rebind),
/// redirects may not leave the host, and size and time are limited.
/// </summary>
public sealed class SafeHttpDownloader(IOptions<FinetuneOptions> options, IOptions<OutboundOptions> outbound)
{
    private RemoteDatasetOptions Settings => options.Value.RemoteDatasets;

    /// <summary>Checks a URL before a job is accepted: the host must not resolve to a refused address.</summary>
    public async Task CheckAllowedAsync(Uri url, CancellationToken ct)
    {
        var allow = outbound.Value.AllowList();
        IPAddress[] addresses;
        try
        {
            addresses = await ResolveAsync(url.IdnHost, ct).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            return; // cannot tell yet: the download checks again and fails the job with a clear error
        }

        Refuse(url.IdnHost, addresses, allow);
    }

    /// <summary>Streams the URL into the store under <paramref name="key"/>.</summary>
    public async Task<long> DownloadAsync(Uri url, IArtifactStore store, string key, CancellationToken ct)
    {
        var settings = Settings;
        var allow = outbound.Value.AllowList();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(settings.Timeout);
        using var handler = CreateHandler(allow, settings);
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        var current = url;
        try
        {
            for (var redirects = 0; ; redirects++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, current);
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                if (IsRedirect(response.StatusCode))
                {
                    var location = response.Headers.Location;
                    if (location is null || redirects >= settings.MaxRedirects)
                    {
                        throw new DatasetException(DatasetException.Unavailable, $"The dataset URL redirects too often (limit {settings.MaxRedirects}).");
                    }

                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if (next.Scheme != Uri.UriSchemeHttps || !string.Equals(next.IdnHost, url.IdnHost, StringComparison.OrdinalIgnoreCase) || next.Port != url.Port)
                    {
                        throw new DatasetException(DatasetException.NotAllowed, $"The dataset URL redirects to another host ({next.Scheme}://{next.Authority}); only same-host https redirects are followed.");
                    }

                    current = next;
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw new DatasetException(DatasetException.Unavailable, $"Downloading the dataset failed: the server answered {(int)response.StatusCode} {response.ReasonPhrase}.");
                }

                if (response.Content.Headers.ContentLength is { } length && length > settings.MaxBytes)
                {
                    throw new DatasetException(DatasetException.TooLarge, $"The dataset is {length} bytes; the limit is {settings.MaxBytes}.");
                }

                await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
                return await store.SaveAsync(key, body, settings.MaxBytes, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (ArtifactTooLargeException)
        {
            throw new DatasetException(DatasetException.TooLarge, $"The dataset is larger than the limit of {settings.MaxBytes} bytes.");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DatasetException(DatasetException.Unavailable, $"Downloading the dataset took longer than {settings.Timeout.TotalSeconds:0} s.");
        }
        catch (HttpRequestException e) when (GuardedConnection.RefusalIn(e) is { } refused)
        {
            throw NotAllowed(refused);
        }
        catch (HttpRequestException e)
        {
            throw new DatasetException(DatasetException.Unavailable, $"Downloading the dataset failed: {e.Message}", e);
        }
    }

    private static SocketsHttpHandler CreateHandler(HostAllowList allow, RemoteDatasetOptions settings)
    {
        var trusted = LoadTrustedRoots(settings.TrustedRootCertificatesPath);
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // followed by hand, so each hop is checked
            UseProxy = false,          // a proxy would make the address checks meaningless
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.All,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            ConnectCallback = GuardedConnection.ConnectCallback(allow),
        };
        if (trusted is not null)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => Validate(certificate, errors, trusted),
            };
        }

        return handler;
    }

    /// <summary>System trust as usual; otherwise the chain must end at one of the configured extra roots (names must still match).</summary>
    private static bool Validate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    private static X509Certificate2Collection? LoadTrustedRoots(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(path);
        return roots;
    }

    private static Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) => GuardedConnection.ResolveAsync(host, ct);

    private static void Refuse(string host, IPAddress[] addresses, HostAllowList allow)
    {
        try
        {
            GuardedConnection.EnsureAllowed(host, addresses, allow);
        }
        catch (DestinationRefusedException refused)
        {
            throw NotAllowed(refused);
        }
    }

    private static DatasetException NotAllowed(DestinationRefusedException refused) =>
        new(DatasetException.NotAllowed,
            $"The dataset host '{refused.Host}' resolves to {refused.Address}, a loopback, private, link-local or metadata address; such hosts must be allow-listed (Outbound:AllowedHosts).");

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;
}
