using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using LLMTune.Platform.Http;

namespace LLMTune.Gateway.ApiKeys;

/// <summary>Key secrets: <c>sk_live_</c> + 43 base62 characters (256 random bits), stored only as SHA-256.</summary>
public static partial class ApiKeySecrets
{
    public const string Scheme = "sk_live_";
    private const int RandomChars = 43; // 43 × log2(62) ≈ 256 bits, more than the 32 bytes asked for
    private const int DisplayChars = 4;

    public static string NewSecret() => Scheme + Base62.Random(RandomChars);

    public static bool IsWellFormed(string secret) => Shape().IsMatch(secret);

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public static string DisplayPrefix(string secret) => secret[..(Scheme.Length + DisplayChars)];

    /// <summary>Constant-time comparison of two hex hashes.</summary>
    public static bool HashesEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    [GeneratedRegex("^sk_live_[0-9A-Za-z]{32,128}$")]
    private static partial Regex Shape();
}
