using System.Security.Cryptography;
using System.Text;
using LLMTune.Platform.Modules;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

/// <summary>
/// Encrypts signing secrets at rest with AES-256-GCM under <c>Webhooks:EncryptionKey</c> (one key shared by every
/// replica, unlike ASP.NET Data Protection's per-machine key ring). The stored form is <c>v1.</c> + base64(nonce | tag | ciphertext).
/// </summary>
public sealed class SecretProtector
{
    private const string Prefix = "v1.";
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private static readonly byte[] Purpose = Encoding.UTF8.GetBytes("llmtune-webhook-signing-secret");
    private readonly Lazy<byte[]> _key;

    public SecretProtector(IOptions<WebhooksOptions> options, HostTopology topology)
    {
        _key = new Lazy<byte[]>(() => LoadKey(options.Value, topology));
    }

    public static bool IsValidKey(string base64)
    {
        var buffer = new byte[32];
        return Convert.TryFromBase64String(base64.Trim(), buffer, out var written) && written == 32;
    }

    /// <summary>Called at start so a missing key stops the service at once rather than at the first delivery.</summary>
    public void EnsureKey() => _ = _key.Value;

    public string Protect(string secret)
    {
        var plain = Encoding.UTF8.GetBytes(secret);
        var sealedBytes = new byte[NonceSize + TagSize + plain.Length];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key.Value, TagSize);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceSize + TagSize), sealedBytes.AsSpan(NonceSize, TagSize), Purpose);
        return Prefix + Convert.ToBase64String(sealedBytes);
    }

    public string Unprotect(string stored)
    {
        if (!stored.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new CryptographicException("Not a protected webhook secret.");
        }

        var sealedBytes = Convert.FromBase64String(stored[Prefix.Length..]);
        var plain = new byte[sealedBytes.Length - NonceSize - TagSize];
        using var aes = new AesGcm(_key.Value, TagSize);
        aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize + TagSize), sealedBytes.AsSpan(NonceSize, TagSize), plain, Purpose);
        return Encoding.UTF8.GetString(plain);
    }

    private static byte[] LoadKey(WebhooksOptions options, HostTopology topology)
    {
        if (!string.IsNullOrWhiteSpace(options.EncryptionKey))
        {
            return Convert.FromBase64String(options.EncryptionKey.Trim());
        }

        if (!topology.IsAllInOne)
        {
            throw new InvalidOperationException("Webhooks:EncryptionKey (env Webhooks__EncryptionKey, base64 of 32 bytes) is required in split mode: every webhooks replica must share it.");
        }

        var path = Path.GetFullPath(options.EncryptionKeyFile);
        if (File.Exists(path))
        {
            return Convert.FromBase64String(File.ReadAllText(path).Trim());
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = RandomNumberGenerator.GetBytes(32);
        var created = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            created.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var writer = new StreamWriter(path, Encoding.ASCII, created);
            writer.Write(Convert.ToBase64String(key));
            return key;
        }
        catch (IOException) when (File.Exists(path))
        {
            return Convert.FromBase64String(File.ReadAllText(path).Trim()); // another start wrote it first
        }
    }
}
