using System.Text;
using LLMTune.Platform.Artifacts;
using LLMTune.Testing;

namespace LLMTune.Platform.Tests.Artifacts;

/// <summary>The one behaviour both artifact stores promise; each subclass supplies a fresh, empty store.</summary>
public abstract class ArtifactStoreContractTests : IAsyncLifetime
{
    private IArtifactStore? _store;

    protected IArtifactStore Store => _store ?? throw new InvalidOperationException("store not open");

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Opens an empty store, or calls <see cref="Assert.Skip(string)"/> with the reason it cannot.</summary>
    protected abstract ValueTask<IArtifactStore> OpenStoreAsync();

    public async ValueTask InitializeAsync() => _store = await OpenStoreAsync();

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        (_store as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Saved_content_reads_back_and_a_second_save_replaces_it()
    {
        Assert.Equal(5, await Save("jobs/job_1/adapter.gguf", "first"));
        Assert.True(await Store.ExistsAsync("jobs/job_1/adapter.gguf", Ct));
        Assert.Equal("first", await Read("jobs/job_1/adapter.gguf"));

        await Save("jobs/job_1/adapter.gguf", "second, longer");
        Assert.Equal("second, longer", await Read("jobs/job_1/adapter.gguf"));
    }

    [Fact]
    public async Task A_large_object_round_trips_intact()
    {
        // Above the S3 store's part size in the tests (5 MiB): it goes up in three parts.
        var content = new byte[12 * 1024 * 1024 + 17];
        new Random(7).NextBytes(content);
        Assert.Equal(content.Length, await Store.SaveAsync("jobs/job_big/model.gguf", new MemoryStream(content), long.MaxValue, Ct));
        var path = await Store.GetLocalFileAsync("jobs/job_big/model.gguf", Ct);
        Assert.Equal(content, await File.ReadAllBytesAsync(path!, Ct));
    }

    [Fact]
    public async Task A_missing_object_is_null_and_does_not_exist()
    {
        Assert.Null(await Store.OpenReadAsync("files/file_missing", Ct));
        Assert.False(await Store.ExistsAsync("files/file_missing", Ct));
        Assert.Null(await Store.GetLocalFileAsync("files/file_missing", Ct));
        await Store.DeleteAsync("files/file_missing", Ct); // deleting nothing is fine
    }

    [Fact]
    public async Task Content_over_the_limit_is_refused_and_leaves_the_previous_object()
    {
        await Save("files/file_limit", "small");
        await Assert.ThrowsAsync<ArtifactTooLargeException>(() => Save("files/file_limit", new string('x', 1000), maxBytes: 100));
        Assert.Equal("small", await Read("files/file_limit"));

        await Assert.ThrowsAsync<ArtifactTooLargeException>(() => Save("files/file_new", new string('x', 1000), maxBytes: 100));
        Assert.False(await Store.ExistsAsync("files/file_new", Ct));
    }

    [Fact]
    public async Task Deleting_a_prefix_removes_everything_under_it_and_nothing_else()
    {
        await Save("jobs/job_a/dataset.jsonl", "a");
        await Save("jobs/job_a/checkpoints/checkpoint.gguf", "b");
        await Save("jobs/job_ab/dataset.jsonl", "c");
        await Save("files/file_1", "d");

        await Store.DeleteAsync("jobs/job_a/", Ct);
        Assert.False(await Store.ExistsAsync("jobs/job_a/dataset.jsonl", Ct));
        Assert.False(await Store.ExistsAsync("jobs/job_a/checkpoints/checkpoint.gguf", Ct));
        Assert.True(await Store.ExistsAsync("jobs/job_ab/dataset.jsonl", Ct));

        await Store.DeleteAsync("files/file_1", Ct);
        Assert.False(await Store.ExistsAsync("files/file_1", Ct));
    }

    [Fact]
    public async Task A_location_names_the_object_for_other_services_and_maps_back_to_its_key()
    {
        var location = Store.LocationOf("jobs/job_9/model.gguf");
        Assert.Equal("jobs/job_9/model.gguf", Store.KeyOf(location));
        Assert.Null(Store.KeyOf("s3://some-other-bucket/jobs/job_9/model.gguf"));
        Assert.Null(Store.KeyOf("file:///somewhere/else/model.gguf"));
        Assert.Null(Store.KeyOf("not a location"));
    }

    [Theory]
    [InlineData("../outside")]
    [InlineData("jobs/../../outside")]
    [InlineData("/absolute")]
    [InlineData("jobs//double")]
    public async Task Keys_cannot_leave_the_store(string key)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Save(key, "x"));
        Assert.Throws<ArgumentException>(() => Store.LocationOf(key));
    }

    [Fact]
    public async Task A_local_file_holds_the_current_content()
    {
        await Save("jobs/job_2/adapter.gguf", "version one");
        var path = await Store.GetLocalFileAsync("jobs/job_2/adapter.gguf", Ct);
        Assert.NotNull(path);
        Assert.Equal("version one", await File.ReadAllTextAsync(path, Ct));

        await Save("jobs/job_2/adapter.gguf", "version two");
        var again = await Store.GetLocalFileAsync("jobs/job_2/adapter.gguf", Ct);
        Assert.Equal("version two", await File.ReadAllTextAsync(again!, Ct));

        await Store.DeleteAsync("jobs/job_2/", Ct);
        Assert.Null(await Store.GetLocalFileAsync("jobs/job_2/adapter.gguf", Ct));
        Assert.False(File.Exists(again));
    }

    [Fact]
    public async Task A_file_on_disk_is_saved_whole_and_its_limit_holds()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("llmtune-artifact-source-").FullName, "checkpoint.gguf");
        var content = new byte[6 * 1024 * 1024 + 3]; // above the S3 store's part size in the tests
        new Random(3).NextBytes(content);
        await File.WriteAllBytesAsync(path, content, Ct);

        await using (var file = File.OpenRead(path))
        {
            Assert.Equal(content.Length, await Store.SaveAsync("jobs/job_3/checkpoint.gguf", file, long.MaxValue, Ct));
        }

        Assert.Equal(content, await File.ReadAllBytesAsync((await Store.GetLocalFileAsync("jobs/job_3/checkpoint.gguf", Ct))!, Ct));
        await using (var file = File.OpenRead(path))
        {
            await Assert.ThrowsAsync<ArtifactTooLargeException>(() => Store.SaveAsync("jobs/job_3/other.gguf", file, 1024, Ct));
        }

        Assert.False(await Store.ExistsAsync("jobs/job_3/other.gguf", Ct));
    }

    private Task<long> Save(string key, string text, long maxBytes = long.MaxValue) =>
        Store.SaveAsync(key, new MemoryStream(Encoding.UTF8.GetBytes(text)), maxBytes, Ct);

    private async Task<string?> Read(string key)
    {
        await using var stream = await Store.OpenReadAsync(key, Ct);
        if (stream is null)
        {
            return null;
        }

        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync(Ct);
    }
}

public sealed class LocalArtifactStoreTests : ArtifactStoreContractTests
{
    protected override ValueTask<IArtifactStore> OpenStoreAsync() =>
        ValueTask.FromResult<IArtifactStore>(new LocalArtifactStore(Directory.CreateTempSubdirectory("llmtune-artifacts-").FullName));
}

/// <summary>
/// Against a real S3-compatible server: <c>LLMTUNE_TEST_S3</c> (its URL; test.sh starts one) with
/// <c>LLMTUNE_TEST_S3_ACCESS_KEY</c>/<c>_SECRET_KEY</c>, else skipped with the reason. Each test gets a new bucket.
/// </summary>
public sealed class S3ArtifactStoreTests : ArtifactStoreContractTests
{
    private ArtifactS3Options _options = null!;

    protected override async ValueTask<IArtifactStore> OpenStoreAsync()
    {
        _options = await TestS3.NewBucketAsync(Ct);
        _options.Prefix = "installation-a/";
        _options.PartSize = 5L * 1024 * 1024;
        return new S3ArtifactStore(_options);
    }

    [Fact]
    public async Task A_downloaded_copy_still_serves_when_the_bucket_is_unreachable()
    {
        await Store.SaveAsync("jobs/job_4/adapter.gguf", new MemoryStream("weights"u8.ToArray()), long.MaxValue, Ct);
        var cached = await Store.GetLocalFileAsync("jobs/job_4/adapter.gguf", Ct);

        // The same cache, a bucket endpoint nobody listens on (a restarted replica during an outage).
        _options.ServiceUrl = "http://127.0.0.1:9";
        using var offline = new S3ArtifactStore(_options);
        Assert.Equal(cached, await offline.GetLocalFileAsync("jobs/job_4/adapter.gguf", Ct));
        await Assert.ThrowsAnyAsync<Exception>(() => offline.GetLocalFileAsync("jobs/job_4/never-downloaded.gguf", Ct));
    }
}
