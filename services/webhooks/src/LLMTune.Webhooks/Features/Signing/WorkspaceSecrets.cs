using System.Collections.Concurrent;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>The workspace's signing secret for the <c>webhookUrl</c>s given on jobs and batches (stored encrypted).</summary>
public sealed class WorkspaceSecret : IDocument
{
    /// <summary>The workspace id: one secret set per workspace.</summary>
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public List<SigningKey> Keys { get; set; } = [];

    /// <summary>Whether the current secret has been shown; it is shown once.</summary>
    public bool Revealed { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? RotatedAt { get; set; }
}

public sealed class WorkspaceSecrets(IDocumentStore store, SecretProtector protector, TimeProvider time, IOptions<WebhooksOptions> options)
{
    /// <summary>
    /// How long decrypted signing keys are reused: reading and decrypting them for every delivery costs a third of an
    /// attempt under load. A rotation in this process is seen at once; one on another replica within this time (the
    /// old secret signs on for the rotation overlap, so receivers keep verifying meanwhile).
    /// </summary>
    public static readonly TimeSpan SigningKeysCacheFor = TimeSpan.FromSeconds(1);

    private readonly IDocumentCollection<WorkspaceSecret> _secrets = store.Collection<WorkspaceSecret>("webhook_workspace_secrets");
    private readonly ConcurrentDictionary<string, CachedKeys> _signingKeys = new(StringComparer.Ordinal);

    private DateTime Now => time.GetUtcNow().UtcDateTime;

    /// <summary>The workspace's secrets, created on first need (a delivery may come before anyone asked for it).</summary>
    public async Task<WorkspaceSecret> GetOrCreateAsync(string workspaceId, CancellationToken ct)
    {
        if (await _secrets.GetAsync(workspaceId, ct) is { } existing)
        {
            return existing;
        }

        var created = new WorkspaceSecret
        {
            Id = workspaceId,
            Keys = [new SigningKey { Protected = protector.Protect(Signatures.NewSecret()), CreatedAt = Now }],
            CreatedAt = Now,
        };
        try
        {
            await _secrets.InsertAsync(created, ct);
            return created;
        }
        catch (DuplicateDocumentException)
        {
            return (await _secrets.GetAsync(workspaceId, ct))!;
        }
    }

    /// <summary>The current secret in plain text the first time it is asked for; null afterwards.</summary>
    public async Task<(WorkspaceSecret Secret, string? Plain)> RevealAsync(string workspaceId, CancellationToken ct)
    {
        await GetOrCreateAsync(workspaceId, ct);
        var revealed = await _secrets.FindOneAndUpdateAsync(s => s.Id == workspaceId && !s.Revealed, s => s.Revealed = true, null, ct);
        return revealed is null
            ? ((await _secrets.GetAsync(workspaceId, ct))!, null)
            : (revealed, protector.Unprotect(revealed.Keys.InForce(Now).First().Protected));
    }

    /// <summary>A new secret, shown now; the old one keeps signing for <c>Webhooks:RotationOverlap</c>.</summary>
    public async Task<(WorkspaceSecret Secret, string Plain)> RotateAsync(string workspaceId, CancellationToken ct)
    {
        await GetOrCreateAsync(workspaceId, ct);
        var plain = Signatures.NewSecret();
        var sealedSecret = protector.Protect(plain);
        var now = Now;
        var rotated = await _secrets.FindOneAndUpdateAsync(s => s.Id == workspaceId, s =>
        {
            s.Keys = s.Keys.Rotate(sealedSecret, now, options.Value.RotationOverlap);
            s.Revealed = true;
            s.RotatedAt = now;
        }, null, ct);
        _signingKeys.TryRemove(workspaceId, out _);
        return (rotated!, plain);
    }

    /// <summary>The plain secrets that sign a delivery now, newest first.</summary>
    public async Task<IReadOnlyList<string>> ForSigningAsync(string workspaceId, CancellationToken ct)
    {
        var now = Now;
        if (!_signingKeys.TryGetValue(workspaceId, out var cached) || now - cached.ReadAt >= SigningKeysCacheFor || now < cached.ReadAt)
        {
            var secret = await GetOrCreateAsync(workspaceId, ct);
            cached = new CachedKeys(now, secret.Keys, secret.Keys.ToDictionary(k => k.Protected, k => protector.Unprotect(k.Protected), StringComparer.Ordinal));
            _signingKeys[workspaceId] = cached;
        }

        return [.. cached.Keys.InForce(now).Select(k => cached.Plain[k.Protected])];
    }

    /// <summary>A workspace's keys as read at <paramref name="ReadAt"/>, and each one's plain secret.</summary>
    private sealed record CachedKeys(DateTime ReadAt, IReadOnlyList<SigningKey> Keys, IReadOnlyDictionary<string, string> Plain);
}
