using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LLMTune.Finetune.Tests;

/// <summary>
/// <c>gs://</c> datasets read by Google's own client from a GCS-compatible server on loopback (<c>Finetune:Gcs:ServiceUrl</c>),
/// which speaks the part of the JSON API the client uses: object metadata, media downloads and GCS-style errors.
/// </summary>
public sealed partial class GcsDatasetTests(GcsDatasetTests.Fixture fixture) : IClassFixture<GcsDatasetTests.Fixture>
{
    private const string Bucket = "datasets";
    private const long MaxBytes = 64 * 1024;

    [Fact]
    public async Task A_gs_dataset_is_downloaded_through_the_configured_endpoint_and_trains()
    {
        using var client = fixture.Host.Client();
        var id = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = $"gs://{Bucket}/train.jsonl", hyperparameters = new { epochs = 1, batchSize = 4 } }))
            .GetProperty("id").GetString()!;
        var done = await client.WaitForStatusAsync(id, TimeSpan.FromMinutes(2), "completed", "failed");
        Assert.True(done.GetProperty("status").GetString() == "completed", done.ToString());

        // The client asked for the metadata, then the bytes of exactly the generation it was told about.
        var seen = fixture.Gcs.RequestsFor(Bucket, "train.jsonl");
        Assert.Contains(seen, r => !r.Media);
        var media = Assert.Single(seen, r => r.Media);
        Assert.Equal(Fixture.TrainGeneration.ToString(System.Globalization.CultureInfo.InvariantCulture), media.Generation);
        Assert.Contains(await client.EventsAsync(id), e => e.GetProperty("message").GetString()!.StartsWith("Dataset valid: 12 examples", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_missing_object_fails_the_job_as_unavailable_and_the_service_carries_on()
    {
        using var client = fixture.Host.Client();
        var id = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset = $"gs://{Bucket}/missing.jsonl", hyperparameters = new { epochs = 1, batchSize = 4 } }))
            .GetProperty("id").GetString()!;
        var failed = await client.WaitForStatusAsync(id, TimeSpan.FromMinutes(1), "failed", "completed");
        var error = failed.GetProperty("error");
        Assert.Equal(DatasetException.Unavailable, error.GetProperty("code").GetString());
        Assert.Contains($"gs://{Bucket}/missing.jsonl", error.GetProperty("message").GetString());
        Assert.Contains("no such object", error.GetProperty("message").GetString());

        // The 404 came from the configured server (not from an unreachable storage.googleapis.com).
        var seen = fixture.Gcs.RequestsFor(Bucket, "missing.jsonl");
        Assert.NotEmpty(seen);
        Assert.All(seen, r => Assert.Equal(HttpStatusCode.NotFound, r.Status));

        var list = await client.GetAsync("/v1/fine-tune");
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task An_object_over_the_remote_dataset_limit_fails_as_too_large_before_any_training()
    {
        using var client = fixture.Host.Client();

        // Its metadata says it is too large: the bytes are never asked for.
        var declared = await FailedJobAsync(client, $"gs://{Bucket}/big/huge.jsonl");
        Assert.Equal(DatasetException.TooLarge, declared.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains($"gs://{Bucket}/big/huge.jsonl", declared.GetProperty("error").GetProperty("message").GetString());
        Assert.Contains(fixture.Gcs.RequestsFor(Bucket, "big/huge.jsonl"), r => !r.Media && r.Status == HttpStatusCode.OK);
        Assert.DoesNotContain(fixture.Gcs.RequestsFor(Bucket, "big/huge.jsonl"), r => r.Media);

        // Its metadata understates the size: the limit still holds while the bytes arrive.
        var understated = await FailedJobAsync(client, $"gs://{Bucket}/understated.jsonl");
        Assert.Equal(DatasetException.TooLarge, understated.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains($"larger than the limit of {MaxBytes} bytes", understated.GetProperty("error").GetProperty("message").GetString());
        Assert.Contains(fixture.Gcs.RequestsFor(Bucket, "understated.jsonl"), r => r.Media);

        foreach (var job in new[] { declared, understated })
        {
            Assert.False(job.TryGetProperty("fineTunedModel", out _), job.ToString());
            var statuses = (await client.EventsAsync(job.GetProperty("id").GetString()!))
                .Where(e => e.TryGetProperty("status", out _)).Select(e => e.GetProperty("status").GetString()).ToList();
            Assert.Equal(["queued", "validating", "failed"], statuses);
        }
    }

    [Fact]
    public async Task A_download_that_outlasts_the_remote_dataset_timeout_fails_the_job_as_unavailable()
    {
        using var client = fixture.Host.Client();
        var stalled = await FailedJobAsync(client, $"gs://{Bucket}/stalled.jsonl");
        Assert.Equal("dataset_unavailable", stalled.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("did not download within 3 s", stalled.GetProperty("error").GetProperty("message").GetString());
        Assert.Contains(fixture.Gcs.RequestsFor(Bucket, "stalled.jsonl"), r => r.Media);
    }

    [Theory]
    [InlineData("localhost:4443")]
    [InlineData("ftp://gcs.internal")]
    [InlineData("/storage/v1")]
    [InlineData("http://gcs.internal/?project=x")]
    public void A_service_url_that_is_not_an_absolute_http_url_is_refused_naming_the_setting(string serviceUrl)
    {
        var result = new FinetuneOptionsValidator().Validate(null, new FinetuneOptions { Gcs = { ServiceUrl = serviceUrl } });
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Finetune:Gcs:ServiceUrl", StringComparison.Ordinal) && f.Contains(serviceUrl, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData(" ", null)]
    [InlineData("http://localhost:4443", "http://localhost:4443/storage/v1/")]
    [InlineData("https://gateway.internal/gcs/", "https://gateway.internal/gcs/storage/v1/")]
    public void The_json_api_base_is_under_the_service_url_and_a_valid_one_passes_validation(string? serviceUrl, string? baseUri)
    {
        Assert.Equal(baseUri, GcsDatasetReader.BaseUriOf(serviceUrl));
        Assert.True(new FinetuneOptionsValidator().Validate(null, new FinetuneOptions { Gcs = { ServiceUrl = serviceUrl } }).Succeeded);
    }

    private static async Task<JsonElement> FailedJobAsync(HttpClient client, string dataset)
    {
        var id = (await client.CreateJobAsync(new { baseModel = FinetuneHost.Small, dataset, hyperparameters = new { epochs = 1, batchSize = 4 } }))
            .GetProperty("id").GetString()!;
        var job = await client.WaitForStatusAsync(id, TimeSpan.FromMinutes(1), "failed", "completed");
        Assert.True(job.GetProperty("status").GetString() == "failed", job.ToString());
        return job;
    }

    /// <summary>One GCS-compatible server and one fine-tune host reading from it anonymously, shared by the tests.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public const long TrainGeneration = 1712345678901234;

        public FakeGcsServer Gcs { get; private set; } = null!;
        public FinetuneHost Host { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            var oversized = Encoding.UTF8.GetBytes(FinetuneApi.SecretWordDataset(1200));
            Assert.True(oversized.Length > MaxBytes);
            Gcs = await FakeGcsServer.StartAsync(
            [
                new StoredObject(Bucket, "train.jsonl", Encoding.UTF8.GetBytes(FinetuneApi.SecretWordDataset(12)), TrainGeneration),
                new StoredObject(Bucket, "big/huge.jsonl", oversized, 7),
                new StoredObject(Bucket, "understated.jsonl", oversized, 8, ReportedSize: 1024),
                new StoredObject(Bucket, "stalled.jsonl", Encoding.UTF8.GetBytes(FinetuneApi.SecretWordDataset(12)), 9, MediaDelay: TimeSpan.FromSeconds(60)),
            ]);
            Host = await FinetuneHost.StartAsync(new Dictionary<string, string?>
            {
                ["Finetune:Gcs:ServiceUrl"] = Gcs.ServiceUrl,
                ["Finetune:Gcs:Anonymous"] = "true",
                ["Finetune:RemoteDatasets:MaxBytes"] = MaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Finetune:RemoteDatasets:Timeout"] = "00:00:03",
            });
        }

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await Gcs.DisposeAsync();
        }
    }

    /// <summary>An object the fake server holds; <paramref name="ReportedSize"/> lets its metadata misstate the length.</summary>
    public sealed record StoredObject(string Bucket, string Name, byte[] Content, long Generation, ulong? ReportedSize = null, TimeSpan? MediaDelay = null);

    /// <summary>One request the fake server answered; Bucket and Name are null for paths outside the object API.</summary>
    public sealed record GcsRequest(string Method, string RawTarget, string? Bucket, string? Name, bool Media, string? Generation, HttpStatusCode Status);

    /// <summary>
    /// The JSON API subset behind <c>GetObjectAsync</c> and <c>DownloadObjectAsync</c>: <c>GET /storage/v1/b/{bucket}/o/{object}</c>
    /// returns the object resource, with <c>alt=media</c> (there or under <c>/download/storage/v1/</c>) the bytes with their
    /// <c>x-goog-hash</c>, and anything unknown a 404 with a GCS error body. Object names must arrive percent-encoded, as
    /// GCS requires (<c>big%2Fhuge.jsonl</c>).
    /// </summary>
    public sealed partial class FakeGcsServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly Dictionary<(string Bucket, string Name), StoredObject> _objects;
        private readonly List<GcsRequest> _requests = [];

        private FakeGcsServer(WebApplication app, IEnumerable<StoredObject> objects)
        {
            _app = app;
            _objects = objects.ToDictionary(o => (o.Bucket, o.Name));
        }

        /// <summary>What <c>Finetune:Gcs:ServiceUrl</c> is set to: the root, as for fake-gcs-server.</summary>
        public string ServiceUrl => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        public static async Task<FakeGcsServer> StartAsync(IEnumerable<StoredObject> objects)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            var server = new FakeGcsServer(app, objects);
            app.Run(server.HandleAsync);
            await app.StartAsync();
            return server;
        }

        public IReadOnlyList<GcsRequest> RequestsFor(string bucket, string name)
        {
            lock (_requests)
            {
                return _requests.Where(r => r.Bucket == bucket && r.Name == name).ToList();
            }
        }

        private async Task HandleAsync(HttpContext http)
        {
            var rawTarget = http.Features.Get<IHttpRequestFeature>()!.RawTarget;
            var match = ObjectPath().Match(rawTarget.Split('?')[0]);
            var media = http.Request.Query["alt"] == "media";
            string? generation = http.Request.Query.TryGetValue("generation", out var g) ? g.ToString() : null;
            string? bucket = match.Success ? Uri.UnescapeDataString(match.Groups["bucket"].Value) : null;
            string? name = match.Success ? Uri.UnescapeDataString(match.Groups["object"].Value) : null;
            var found = match.Success && HttpMethods.IsGet(http.Request.Method)
                && (media || !match.Groups["download"].Success)
                && _objects.TryGetValue((bucket!, name!), out var stored)
                && (generation is null || generation == stored.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture))
                ? stored
                : null;
            lock (_requests)
            {
                _requests.Add(new GcsRequest(http.Request.Method, rawTarget, bucket, name, media, generation,
                    found is null ? HttpStatusCode.NotFound : HttpStatusCode.OK));
            }

            if (found is null)
            {
                var message = name is null ? "Not Found" : $"No such object: {bucket}/{name}";
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                await http.Response.WriteAsJsonAsync(new
                {
                    error = new { code = 404, message, errors = new[] { new { message, domain = "global", reason = "notFound" } } },
                });
                return;
            }

            var (crc32c, md5) = Hashes(found.Content);
            if (media)
            {
                if (found.MediaDelay is { } delay)
                {
                    await Task.Delay(delay, http.RequestAborted).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                http.Response.Headers["x-goog-generation"] = found.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture);
                http.Response.Headers["x-goog-metageneration"] = "1";
                http.Response.Headers["x-goog-stored-content-length"] = found.Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                http.Response.Headers["x-goog-hash"] = $"crc32c={crc32c},md5={md5}";
                await Results.Bytes(found.Content, "application/jsonl", enableRangeProcessing: true).ExecuteAsync(http);
                return;
            }

            var generationText = found.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var escapedName = Uri.EscapeDataString(found.Name);
            var origin = ServiceUrl.TrimEnd('/');
            // The JSON API writes 64-bit numbers (size, generation) as strings.
            await http.Response.WriteAsJsonAsync(new Dictionary<string, object>
            {
                ["kind"] = "storage#object",
                ["id"] = $"{found.Bucket}/{found.Name}/{generationText}",
                ["selfLink"] = $"{origin}/storage/v1/b/{found.Bucket}/o/{escapedName}",
                ["mediaLink"] = $"{origin}/download/storage/v1/b/{found.Bucket}/o/{escapedName}?generation={generationText}&alt=media",
                ["name"] = found.Name,
                ["bucket"] = found.Bucket,
                ["generation"] = generationText,
                ["metageneration"] = "1",
                ["contentType"] = "application/jsonl",
                ["storageClass"] = "STANDARD",
                ["size"] = (found.ReportedSize ?? (ulong)found.Content.Length).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["md5Hash"] = md5,
                ["crc32c"] = crc32c,
                ["etag"] = "CAE=",
                ["timeCreated"] = "2025-01-01T00:00:00.000Z",
                ["updated"] = "2025-01-01T00:00:00.000Z",
            });
        }

        /// <summary>GCS's two hashes, base64 as in <c>x-goog-hash</c>: CRC32C (Castagnoli, big-endian) and MD5.</summary>
        private static (string Crc32c, string Md5) Hashes(byte[] content)
        {
            var crc = 0xFFFFFFFFu;
            foreach (var b in content)
            {
                crc ^= b;
                for (var bit = 0; bit < 8; bit++)
                {
                    crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
                }
            }

            var bigEndian = BitConverter.GetBytes(~crc);
            if (BitConverter.IsLittleEndian)
            {
                Array.Reverse(bigEndian);
            }

            return (Convert.ToBase64String(bigEndian), Convert.ToBase64String(MD5.HashData(content)));
        }

        [GeneratedRegex("^/(?<download>download/)?storage/v1/b/(?<bucket>[^/]+)/o/(?<object>[^/]+)$")]
        private static partial Regex ObjectPath();

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
