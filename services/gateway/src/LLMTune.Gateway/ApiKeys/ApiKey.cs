using LLMTune.Platform.Storage;

namespace LLMTune.Gateway.ApiKeys;

/// <summary>
/// A stored API key. Only the SHA-256 of the secret is kept (plus a short display prefix); the secret itself is
/// shown once. A rotated key keeps answering to its previous secret until <see cref="PreviousSecretExpiresAt"/>.
/// </summary>
public sealed class ApiKey : IDocument
{
    public const string Collection = "api_keys";

    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string WorkspaceId { get; set; } = "";
    public string Name { get; set; } = "";

    /// <summary>The first characters of the secret, e.g. <c>sk_live_Ab12</c>, so people can tell keys apart.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>Hex SHA-256 of the current secret.</summary>
    public string SecretHash { get; set; } = "";

    /// <summary>Hex SHA-256 of the secret before the last rotation, valid during the grace period.</summary>
    public string? PreviousSecretHash { get; set; }

    public DateTime? PreviousSecretExpiresAt { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    public DateTime? ExpiresAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}
