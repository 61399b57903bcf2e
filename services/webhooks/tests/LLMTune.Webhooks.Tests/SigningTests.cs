using System.Security.Cryptography;
using LLMTune.Platform.Modules;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using StandardWebhooks;

namespace LLMTune.Webhooks.Tests;

/// <summary>Our signatures as a receiver checks them: with the third-party StandardWebhooks library.</summary>
public sealed class SigningTests
{
    [Fact]
    public void A_signature_verifies_with_the_StandardWebhooks_library_and_a_tampered_body_does_not()
    {
        var secret = Signatures.NewSecret();
        var now = DateTimeOffset.UtcNow;
        const string body = """{"event":"training.completed","data":{"jobId":"job_1"},"deliveredAt":"2025-11-08T14:22:31Z"}""";
        var headers = Headers("msg_1", now, Signatures.Header([secret], "msg_1", now.ToUnixTimeSeconds(), body));

        new StandardWebhook(secret).Verify(body, headers);
        Assert.ThrowsAny<Exception>(() => new StandardWebhook(secret).Verify(body.Replace("job_1", "job_2", StringComparison.Ordinal), headers));
        Assert.ThrowsAny<Exception>(() => new StandardWebhook(Signatures.NewSecret()).Verify(body, headers));
    }

    [Fact]
    public void During_a_rotation_both_signatures_are_sent_and_either_secret_verifies()
    {
        var (old, fresh) = (Signatures.NewSecret(), Signatures.NewSecret());
        var now = DateTimeOffset.UtcNow;
        const string body = """{"event":"webhook.test","data":{},"deliveredAt":"2025-11-08T14:22:31Z"}""";
        var signature = Signatures.Header([fresh, old], "msg_2", now.ToUnixTimeSeconds(), body);

        var signatures = signature.Split(' ');
        Assert.Equal(2, signatures.Length);
        Assert.All(signatures, s => Assert.StartsWith("v1,", s));
        new StandardWebhook(fresh).Verify(body, Headers("msg_2", now, signature));
        // StandardWebhooks 1.1.2 compares only the first signature of a list, so the old one is checked on its own.
        new StandardWebhook(old).Verify(body, Headers("msg_2", now, signatures[1]));
        Assert.ThrowsAny<Exception>(() => new StandardWebhook(old).Verify(body, Headers("msg_2", now, signatures[0])));
    }

    [Fact]
    public void Rotating_keeps_the_old_key_for_the_overlap_only()
    {
        var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        List<SigningKey> keys = [new() { Protected = "old", CreatedAt = now.AddDays(-1) }];
        var rotated = keys.Rotate("new", now, TimeSpan.FromHours(24));

        Assert.Equal(["new", "old"], rotated.InForce(now.AddHours(23)).Select(k => k.Protected));
        Assert.Equal(["new"], rotated.InForce(now.AddHours(24)).Select(k => k.Protected));
    }

    [Fact]
    public void Secrets_are_stored_encrypted_with_AES_GCM_and_tampering_is_detected()
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var protector = new SecretProtector(Options.Create(new WebhooksOptions { EncryptionKey = key }), new HostTopology(["webhooks"], IsAllInOne: false));
        var secret = Signatures.NewSecret();

        var stored = protector.Protect(secret);
        Assert.DoesNotContain(secret[Signatures.SecretPrefix.Length..], stored, StringComparison.Ordinal);
        Assert.NotEqual(stored, protector.Protect(secret)); // a fresh nonce each time
        Assert.Equal(secret, protector.Unprotect(stored));

        var bytes = Convert.FromBase64String(stored[3..]);
        bytes[^1] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => protector.Unprotect("v1." + Convert.ToBase64String(bytes)));

        var other = new SecretProtector(Options.Create(new WebhooksOptions { EncryptionKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }), new HostTopology(["webhooks"], false));
        Assert.ThrowsAny<CryptographicException>(() => other.Unprotect(stored));
    }

    [Fact]
    public void Split_mode_without_an_encryption_key_refuses_to_start()
    {
        var protector = new SecretProtector(Options.Create(new WebhooksOptions()), new HostTopology(["webhooks"], IsAllInOne: false));
        var e = Assert.Throws<InvalidOperationException>(protector.EnsureKey);
        Assert.Contains("Webhooks:EncryptionKey", e.Message, StringComparison.Ordinal);
    }

    private static HeaderDictionary Headers(string id, DateTimeOffset at, string signature) => new()
    {
        ["webhook-id"] = id,
        ["webhook-timestamp"] = at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["webhook-signature"] = signature,
    };
}
