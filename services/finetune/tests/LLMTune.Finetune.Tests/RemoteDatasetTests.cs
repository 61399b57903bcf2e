using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LLMTune.Finetune.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Tests;

/// <summary>https datasets from a real Kestrel server on loopback: allowed only when allow-listed, redirects stay on the host.</summary>
public sealed class RemoteDatasetTests
{
    [Fact]
    public async Task An_allow_listed_loopback_https_dataset_trains_and_the_same_url_is_refused_without_the_allow_list()
    {
        var (certificate, pemPath) = SelfSignedLocalhost();
        await using var server = await StartDatasetServerAsync(certificate, FinetuneApi.SecretWordDataset(12));
        var url = $"https://localhost:{server.Port}/data.jsonl";

        await using (var allowing = await FinetuneHost.StartAsync(new Dictionary<string, string?>
        {
            ["Outbound:AllowedHosts:0"] = "localhost",
            ["Finetune:RemoteDatasets:TrustedRootCertificatesPath"] = pemPath,
        }))
        {
            using var client = allowing.Client();
            var trained = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = url, hyperparameters = new { epochs = 1, batchSize = 4 } })).GetProperty("id").GetString()!;
            var done = await client.WaitForStatusAsync(trained, TimeSpan.FromMinutes(2), "completed", "failed");
            Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());
            Assert.Equal(1, server.Requests("/data.jsonl"));

            // A redirect to another host is not followed, even to an address that is itself on loopback.
            var redirected = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = $"https://localhost:{server.Port}/elsewhere" })).GetProperty("id").GetString()!;
            var refused = await client.WaitForStatusAsync(redirected, TimeSpan.FromMinutes(1), "failed", "completed");
            Assert.Equal("dataset_not_allowed", refused.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("redirects to another host", refused.GetProperty("error").GetProperty("message").GetString());
            Assert.Equal(0, server.Requests("/data-on-another-host.jsonl"));

            // A source that cannot be read fails the job with a clear error, and the service carries on.
            var missing = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = $"https://localhost:{server.Port}/missing.jsonl" })).GetProperty("id").GetString()!;
            var unavailable = await client.WaitForStatusAsync(missing, TimeSpan.FromMinutes(1), "failed", "completed");
            Assert.Equal("dataset_unavailable", unavailable.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("404", unavailable.GetProperty("error").GetProperty("message").GetString());
        }

        await using var strict = await FinetuneHost.StartAsync(new Dictionary<string, string?>
        {
            ["Finetune:RemoteDatasets:TrustedRootCertificatesPath"] = pemPath,
        });
        using var strictClient = strict.Client();
        await (await strictClient.PostAsJsonAsync("/v1/fine-tune", new { baseModel = FinetuneHost.Small, dataset = url }))
            .AssertError(HttpStatusCode.BadRequest, "dataset_not_allowed", "dataset");
        await (await strictClient.PostAsJsonAsync("/v1/fine-tune", new { baseModel = FinetuneHost.Small, dataset = "https://169.254.169.254/latest/meta-data" }))
            .AssertError(HttpStatusCode.BadRequest, "dataset_not_allowed", "dataset");
        Assert.Equal(1, server.Requests("/data.jsonl"));
    }

    private static (X509Certificate2 Certificate, string PemPath) SelfSignedLocalhost()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
        var pem = Path.Combine(Directory.CreateTempSubdirectory("llmtune-cert-").FullName, "root.pem");
        File.WriteAllText(pem, certificate.ExportCertificatePem());
        return (certificate, pem);
    }

    private static async Task<DatasetServer> StartDatasetServerAsync(X509Certificate2 certificate, string dataset)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        var app = builder.Build();
        var server = new DatasetServer(app);
        app.Use((http, next) =>
        {
            server.Count(http.Request.Path);
            return next(http);
        });
        app.MapGet("/data.jsonl", () => Results.Text(dataset, "application/jsonl"));
        app.MapGet("/elsewhere", (HttpContext http) => Results.Redirect($"https://127.0.0.1:{http.Connection.LocalPort}/data-on-another-host.jsonl"));
        app.MapGet("/data-on-another-host.jsonl", () => Results.Text(dataset, "application/jsonl"));
        await app.StartAsync();
        return server;
    }

    private sealed class DatasetServer(WebApplication app) : IAsyncDisposable
    {
        private readonly Dictionary<string, int> _requests = [];

        public int Port => new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;

        public void Count(string path)
        {
            lock (_requests)
            {
                _requests[path] = _requests.GetValueOrDefault(path) + 1;
            }
        }

        public int Requests(string path)
        {
            lock (_requests)
            {
                return _requests.GetValueOrDefault(path);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
