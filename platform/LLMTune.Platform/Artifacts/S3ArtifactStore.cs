using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace LLMTune.Platform.Artifacts;

/// <summary>The artifact store as a bucket of any S3-compatible service, for services that run on several machines.</summary>
public sealed class S3ArtifactStore : IArtifactStore, IDisposable
{
    private readonly IAmazonS3 _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly string _cache;
    private readonly long _partSize;
    private readonly SemaphoreSlim _cacheGate = new(1, 1);

    public S3ArtifactStore(ArtifactS3Options options)
    {
        _client = options.CreateClient();
        _bucket = options.Bucket ?? throw new ArgumentException("A bucket is required.", nameof(options));
        _prefix = string.IsNullOrWhiteSpace(options.Prefix) ? "" : options.Prefix.Trim('/') + "/";
        _cache = Path.GetFullPath(options.CachePath);
        _partSize = options.PartSize;
    }

    public async Task<long> SaveAsync(string key, Stream content, long maxBytes, CancellationToken ct)
    {
        var objectKey = ObjectKey(key);
        if (content is FileStream { CanSeek: true, Position: 0 } file)
        {
            // Already a file (checkpoints, trained models): sent from where it is, without a second copy on disk.
            if (file.Length > maxBytes)
            {
                throw new ArtifactTooLargeException(maxBytes);
            }

            await UploadFileAsync(objectKey, file.Name, file.Length, ct).ConfigureAwait(false);
            return file.Length;
        }

        // Other streams are spooled to a file first: the limit is enforced before anything is sent, and the upload
        // knows its length (which S3-compatible stores need).
        var spool = Path.Combine(_cache, "uploads", $"{Guid.NewGuid():N}.tmp");
        try
        {
            var length = await LimitedCopy.WriteFileAtomicallyAsync(spool, content, maxBytes, ct).ConfigureAwait(false);
            await UploadFileAsync(objectKey, spool, length, ct).ConfigureAwait(false);
            return length;
        }
        finally
        {
            File.Delete(spool);
        }
    }

    private async Task UploadFileAsync(string objectKey, string path, long length, CancellationToken ct)
    {
        if (length > _partSize)
        {
            await UploadInPartsAsync(objectKey, path, length, ct).ConfigureAwait(false);
            return;
        }

        // Plain signed bodies: several S3-compatible stores do not understand the SDK's chunked signing.
        await _client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = objectKey, FilePath = path, UseChunkEncoding = false }, ct)
            .ConfigureAwait(false);
    }

    /// <summary>A multipart upload (the only way past S3's 5 GB single-request limit; parts also retry on their own).</summary>
    private async Task UploadInPartsAsync(string objectKey, string path, long length, CancellationToken ct)
    {
        var upload = await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = objectKey }, ct).ConfigureAwait(false);
        try
        {
            var parts = new List<PartETag>();
            for (long position = 0, number = 1; position < length; position += _partSize, number++)
            {
                var part = await _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _bucket,
                    Key = objectKey,
                    UploadId = upload.UploadId,
                    PartNumber = (int)number,
                    FilePath = path,
                    FilePosition = position,
                    PartSize = Math.Min(_partSize, length - position),
                    IsLastPart = position + _partSize >= length,
                    UseChunkEncoding = false,
                }, ct).ConfigureAwait(false);
                parts.Add(new PartETag((int)number, part.ETag));
            }

            await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = _bucket,
                Key = objectKey,
                UploadId = upload.UploadId,
                PartETags = parts,
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = objectKey, UploadId = upload.UploadId }, CancellationToken.None)
                .ConfigureAwait(false);
            throw;
        }
    }

    public async Task<Stream?> OpenReadAsync(string key, CancellationToken ct)
    {
        try
        {
            var response = await _client.GetObjectAsync(_bucket, ObjectKey(key), ct).ConfigureAwait(false);
            return new OwnedStream(response.ResponseStream, response);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
        {
            return null;
        }
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken ct) => await HeadAsync(key, ct).ConfigureAwait(false) is not null;

    public async Task DeleteAsync(string key, CancellationToken ct)
    {
        ForgetCachedCopy(key);
        if (!key.EndsWith('/'))
        {
            await _client.DeleteObjectAsync(_bucket, ObjectKey(key), ct).ConfigureAwait(false);
            return;
        }

        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = ObjectKey(key) };
        ListObjectsV2Response page;
        do
        {
            page = await _client.ListObjectsV2Async(request, ct).ConfigureAwait(false);
            var objects = page.S3Objects ?? [];
            if (objects.Count > 0)
            {
                await _client.DeleteObjectsAsync(new DeleteObjectsRequest
                {
                    BucketName = _bucket,
                    Objects = objects.Select(o => new KeyVersion { Key = o.Key }).ToList(),
                }, ct).ConfigureAwait(false);
            }

            request.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);
    }

    public string LocationOf(string key) => $"s3://{_bucket}/{ObjectKey(key)}";

    public string? KeyOf(string location)
    {
        var start = $"s3://{_bucket}/{_prefix}";
        return location.StartsWith(start, StringComparison.Ordinal) && location.Length > start.Length ? location[start.Length..] : null;
    }

    public async Task<string?> GetLocalFileAsync(string key, CancellationToken ct)
    {
        var path = CachePathOf(key);
        var tagPath = path + ".etag";
        GetObjectMetadataResponse? head;
        try
        {
            head = await HeadAsync(key, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException && File.Exists(path) && File.Exists(tagPath))
        {
            // The bucket is unreachable: a copy fetched earlier still lets a restarted replica serve its models.
            return path;
        }

        if (head is null)
        {
            return null;
        }

        await _cacheGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (File.Exists(path) && File.Exists(tagPath) && await File.ReadAllTextAsync(tagPath, ct).ConfigureAwait(false) == head.ETag)
            {
                return path;
            }

            using var response = await _client.GetObjectAsync(_bucket, ObjectKey(key), ct).ConfigureAwait(false);
            await LimitedCopy.WriteFileAtomicallyAsync(path, response.ResponseStream, long.MaxValue, ct).ConfigureAwait(false);
            await File.WriteAllTextAsync(tagPath, response.ETag, ct).ConfigureAwait(false);
            return path;
        }
        finally
        {
            _cacheGate.Release();
        }
    }

    /// <summary>Readiness: the bucket answers a listing.</summary>
    public Task PingAsync(CancellationToken ct) =>
        _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix, MaxKeys = 1 }, ct);

    public void Dispose()
    {
        _client.Dispose();
        _cacheGate.Dispose();
    }

    private string ObjectKey(string key) => _prefix + ArtifactKey.Validate(key);

    private string CachePathOf(string key) => Path.Combine(_cache, "objects", ArtifactKey.Validate(key.TrimEnd('/')).Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Deleted objects leave the download cache too (a key, or everything under a prefix).</summary>
    private void ForgetCachedCopy(string key)
    {
        var path = CachePathOf(key);
        if (key.EndsWith('/'))
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }

            return;
        }

        foreach (var file in new[] { path, path + ".etag" }.Where(File.Exists))
        {
            File.Delete(file);
        }
    }

    private async Task<GetObjectMetadataResponse?> HeadAsync(string key, CancellationToken ct)
    {
        try
        {
            return await _client.GetObjectMetadataAsync(_bucket, ObjectKey(key), ct).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The object's stream, which also releases the response when the reader is done.</summary>
    private sealed class OwnedStream(Stream inner, IDisposable owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
