using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using LLMTune.Contracts;
using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Gateway.ApiKeys;

public sealed class ApiKeyOptions
{
    public const string Section = "Gateway:ApiKeys";

    /// <summary>How long a verified key stays cached; revocation and rotation also evict at once.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan CacheTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Default grace period during which a rotated key's old secret still works.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00")]
    public TimeSpan RotationGracePeriod { get; set; } = TimeSpan.FromHours(24);

    /// <summary>lastUsedAt is written at most this often per key, to keep writes off the hot path.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan LastUsedResolution { get; set; } = TimeSpan.FromMinutes(1);
}

public enum KeyCheck
{
    Valid,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

public sealed record KeyVerification(KeyCheck Result, ApiKey? Key)
{
    public string Message => Result switch
    {
        KeyCheck.Malformed => "Malformed API key. Send Authorization: Bearer sk_live_…",
        KeyCheck.Unknown => "Invalid API key.",
        KeyCheck.Revoked => "This API key has been revoked.",
        KeyCheck.Expired => "This API key has expired.",
        _ => "OK",
    };
}

/// <summary>Creates, verifies, lists, rotates and revokes API keys. Verification is cached and evicted on change.</summary>
public sealed class ApiKeyService(IDocumentStore store, EventOutbox outbox, TimeProvider time, IOptions<ApiKeyOptions> options, ILogger<ApiKeyService> logger)
{
    private readonly IDocumentCollection<ApiKey> keys = store.Collection<ApiKey>(ApiKey.Collection);
    private readonly ConcurrentDictionary<string, CachedKey> cache = new(StringComparer.Ordinal);

    private sealed record CachedKey(ApiKey Key, DateTime CachedAt);

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await keys.EnsureIndexAsync(k => k.SecretHash, unique: true, ct: ct);
        await keys.EnsureIndexAsync(k => k.PreviousSecretHash, ct: ct);
        await keys.EnsureIndexAsync(k => k.WorkspaceId, ct: ct);
    }

    public async Task<(ApiKey Key, string Secret)> CreateAsync(string workspaceId, string name, DateTime? expiresAt, CancellationToken ct)
    {
        var secret = ApiKeySecrets.NewSecret();
        var key = new ApiKey
        {
            Id = RequestIdMiddleware.NewId("key"),
            WorkspaceId = workspaceId,
            Name = name,
            Prefix = ApiKeySecrets.DisplayPrefix(secret),
            SecretHash = ApiKeySecrets.Hash(secret),
            CreatedAt = Now(),
            ExpiresAt = expiresAt,
        };
        await keys.InsertAsync(key, ct);
        logger.LogInformation("Created API key {KeyId} ({Prefix}) in workspace {WorkspaceId}", key.Id, key.Prefix, workspaceId);
        return (key, secret);
    }

    public async Task<KeyVerification> VerifyAsync(string secret, CancellationToken ct)
    {
        if (!ApiKeySecrets.IsWellFormed(secret))
        {
            return new(KeyCheck.Malformed, null);
        }

        var hash = ApiKeySecrets.Hash(secret);
        var now = Now();
        ApiKey? key;
        if (cache.TryGetValue(hash, out var cached) && now - cached.CachedAt < options.Value.CacheTtl)
        {
            key = cached.Key;
        }
        else
        {
            key = await keys.FindOneAsync(k => k.SecretHash == hash || k.PreviousSecretHash == hash, ct);
            if (key is null)
            {
                cache.TryRemove(hash, out _);
                return new(KeyCheck.Unknown, null);
            }

            cache[hash] = new CachedKey(key, now);
        }

        var check = Check(key, hash, now);
        if (check == KeyCheck.Valid)
        {
            await TouchAsync(key, now, ct);
        }

        return new(check, key);
    }

    public Task<Page<ApiKey>> ListAsync(string workspaceId, PageRequest page, CancellationToken ct) =>
        keys.FindPageAsync(page, time, asOf => k => k.WorkspaceId == workspaceId && k.CreatedAt <= asOf, k => k.CreatedAt, k => k.Id, ct);

    public async Task<ApiKey?> GetAsync(string workspaceId, string keyId, CancellationToken ct)
    {
        var key = await keys.GetAsync(keyId, ct);
        return key is not null && key.WorkspaceId == workspaceId ? key : null; // another workspace's key is simply not found
    }

    public async Task<ApiKey?> RevokeAsync(string workspaceId, string keyId, CancellationToken ct)
    {
        var key = await ChangeAsync(workspaceId, keyId, k =>
        {
            if (k.RevokedAt is not null)
            {
                return false; // already revoked: nothing changes, nothing to announce
            }

            k.RevokedAt = Now();
            return true;
        }, ct);
        if (key is not null)
        {
            Evict(key);
            logger.LogInformation("Revoked API key {KeyId} in workspace {WorkspaceId}", key.Id, workspaceId);
        }

        return key;
    }

    public async Task<(ApiKey Key, string Secret)?> RotateAsync(string workspaceId, string keyId, TimeSpan? gracePeriod, CancellationToken ct)
    {
        var secret = ApiKeySecrets.NewSecret();
        var now = Now();
        var grace = gracePeriod ?? options.Value.RotationGracePeriod;
        ApiKey? before = null;
        var rotated = false;
        var key = await ChangeAsync(workspaceId, keyId, k =>
        {
            if (k.RevokedAt is not null)
            {
                return false;
            }

            before = Clone(k);
            k.PreviousSecretHash = grace > TimeSpan.Zero ? k.SecretHash : null;
            k.PreviousSecretExpiresAt = grace > TimeSpan.Zero ? now + grace : null;
            k.SecretHash = ApiKeySecrets.Hash(secret);
            k.Prefix = ApiKeySecrets.DisplayPrefix(secret);
            rotated = true;
            return true;
        }, ct);
        if (key is null || !rotated)
        {
            return null;
        }

        if (before is not null)
        {
            Evict(before);
        }

        Evict(key);
        logger.LogInformation("Rotated API key {KeyId} in workspace {WorkspaceId}; old secret valid for {Grace}", key.Id, workspaceId, grace);
        return (key, secret);
    }

    /// <summary>Drops this replica's cached verification of the key (another replica revoked or rotated it).</summary>
    public void Forget(string keyId)
    {
        foreach (var (hash, cached) in cache)
        {
            if (cached.Key.Id == keyId)
            {
                cache.TryRemove(hash, out _);
            }
        }
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the workspace's key (it returns false when there is nothing to change) and
    /// records it with <see cref="ApiKeyChanged"/> for the other gateway replicas in one write, retrying when a
    /// concurrent write (say, lastUsedAt) got there first. Null when the workspace has no such key.
    /// </summary>
    private async Task<ApiKey?> ChangeAsync(string workspaceId, string keyId, Func<ApiKey, bool> change, CancellationToken ct)
    {
        while (true)
        {
            var key = await GetAsync(workspaceId, keyId, ct);
            if (key is null || !change(key))
            {
                return key;
            }

            try
            {
                await outbox.Write()
                    .Replace(keys, key)
                    .Add(new ApiKeyChanged(key.WorkspaceId, key.Id, time.GetUtcNow(), key.Id))
                    .CommitAsync(ct);
                return key;
            }
            catch (ConcurrencyConflictException)
            {
                // Read it again and re-apply the change.
            }
        }
    }

    private KeyCheck Check(ApiKey key, string presentedHash, DateTime now)
    {
        if (key.RevokedAt is not null)
        {
            return KeyCheck.Revoked;
        }

        if (key.ExpiresAt is { } expires && expires <= now)
        {
            return KeyCheck.Expired;
        }

        if (ApiKeySecrets.HashesEqual(presentedHash, key.SecretHash))
        {
            return KeyCheck.Valid;
        }

        // The previous secret of a rotated key works only during its grace period.
        var previousValid = key.PreviousSecretHash is { } previous
            && ApiKeySecrets.HashesEqual(presentedHash, previous)
            && key.PreviousSecretExpiresAt > now;
        return previousValid ? KeyCheck.Valid : KeyCheck.Expired;
    }

    private async Task TouchAsync(ApiKey key, DateTime now, CancellationToken ct)
    {
        if (key.LastUsedAt is { } last && now - last < options.Value.LastUsedResolution)
        {
            return;
        }

        key.LastUsedAt = now; // the cached copy; the store gets the same value below
        try
        {
            await keys.FindOneAndUpdateAsync(k => k.Id == key.Id, k => k.LastUsedAt = now, null, ct);
        }
        catch (StorageException e)
        {
            logger.LogWarning(e, "Could not record lastUsedAt for key {KeyId}", key.Id);
        }
    }

    private void Evict(ApiKey key)
    {
        cache.TryRemove(key.SecretHash, out _);
        if (key.PreviousSecretHash is { } previous)
        {
            cache.TryRemove(previous, out _);
        }
    }

    private DateTime Now() => TruncateToMillis(time.GetUtcNow().UtcDateTime);

    // Both stores keep millisecond precision; truncating keeps cursor comparisons exact.
    private static DateTime TruncateToMillis(DateTime t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc);

    private static ApiKey Clone(ApiKey k) => new()
    {
        Id = k.Id,
        SecretHash = k.SecretHash,
        PreviousSecretHash = k.PreviousSecretHash,
    };
}
