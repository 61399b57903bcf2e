using System.Security.Cryptography;
using System.Text;

namespace LLMTune.Webhooks;

/// <summary>Standard Webhooks signing: secrets are <c>whsec_</c> + base64 key bytes; a signature is <c>v1,</c> + base64 HMAC-SHA256 of <c>id.timestamp.body</c>.</summary>
public static class Signatures
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));

    public static string Sign(string secret, string webhookId, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        var signed = Encoding.UTF8.GetBytes($"{webhookId}.{timestamp}.{body}");
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, signed));
    }

    /// <summary>The <c>webhook-signature</c> header: one signature per secret in force, space separated (rotation overlap).</summary>
    public static string Header(IEnumerable<string> secrets, string webhookId, long timestamp, string body) =>
        string.Join(' ', secrets.Select(s => Sign(s, webhookId, timestamp, body)));
}

/// <summary>One signing secret of an endpoint or workspace, encrypted; a rotated-out one keeps signing until <see cref="ExpiresAt"/>.</summary>
public sealed class SigningKey
{
    public string Protected { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime? ExpiresAt { get; set; }
}

public static class SigningKeys
{
    /// <summary>The keys that sign at <paramref name="now"/>, newest first.</summary>
    public static IEnumerable<SigningKey> InForce(this IEnumerable<SigningKey> keys, DateTime now) =>
        keys.Where(k => k.ExpiresAt is null || k.ExpiresAt > now).OrderByDescending(k => k.CreatedAt);

    /// <summary>Adds a new key; the current ones expire after <paramref name="overlap"/>, expired ones are dropped.</summary>
    public static List<SigningKey> Rotate(this IEnumerable<SigningKey> keys, string protectedSecret, DateTime now, TimeSpan overlap)
    {
        var kept = keys.InForce(now).ToList();
        foreach (var key in kept)
        {
            key.ExpiresAt = key.ExpiresAt is { } e && e < now + overlap ? e : now + overlap;
        }

        return [new SigningKey { Protected = protectedSecret, CreatedAt = now }, .. kept];
    }
}
