using System.Net;
using System.Net.Http.Json;
using LLMTune.Platform.Http;
using LLMTune.Webhooks.Tests.Support;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks.Tests;

/// <summary>Deliveries cannot be pointed inside the network; the check runs on the address actually connected to.</summary>
public sealed class SsrfTests
{
    [Theory]
    [InlineData("https://127.0.0.1/hooks")]
    [InlineData("https://10.0.0.1/hooks")]
    [InlineData("https://169.254.169.254/latest/meta-data/")]
    [InlineData("https://[::1]/hooks")]
    [InlineData("https://[::ffff:127.0.0.1]/hooks")]
    [InlineData("https://100.64.0.1/hooks")]
    [InlineData("https://192.168.1.10/hooks")]
    [InlineData("https://[fd00:ec2::254]/hooks")]
    [InlineData("https://[fe80::1]/hooks")]
    [InlineData("https://192.0.2.7/hooks")]
    [InlineData("https://224.0.0.1/hooks")]
    [InlineData("https://localhost/hooks")] // a name that resolves to loopback
    public async Task A_delivery_to_an_internal_address_is_refused_when_connecting(string url)
    {
        using var sender = Sender([]);
        var outcome = await sender.SendAsync(url, "msg_ssrf", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);

        Assert.True(outcome.Refused, $"{url}: {outcome}");
        Assert.Null(outcome.StatusCode);
        Assert.StartsWith("Refused:", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_http_is_refused_unless_the_host_is_allow_listed_and_the_allow_list_lets_the_test_receiver_through()
    {
        await using var receiver = await Receiver.StartAsync();

        using (var strict = Sender([]))
        {
            var refused = await strict.SendAsync(receiver.Url(), "msg_http", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);
            Assert.True(refused.Refused, refused.ToString());
            Assert.Contains("https", refused.Error, StringComparison.Ordinal);
        }

        using var allowing = Sender(["127.0.0.1"]);
        var delivered = await allowing.SendAsync(receiver.Url(), "msg_ok", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);
        Assert.True(delivered.Succeeded, delivered.ToString());
        Assert.Equal("msg_ok", Assert.Single(receiver.Requests).WebhookId);
    }

    [Fact]
    public async Task Allow_listing_one_host_does_not_open_the_others()
    {
        using var sender = Sender(["127.0.0.1"]);
        var outcome = await sender.SendAsync("https://169.254.169.254/", "msg_meta", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);
        Assert.True(outcome.Refused, outcome.ToString());
    }

    [Fact]
    public async Task The_api_turns_internal_and_plain_http_urls_away_with_a_400()
    {
        await using var host = await WebhooksHost.StartAsync();
        using var client = host.Client();

        foreach (var url in new[] { "https://169.254.169.254/", "https://[::ffff:10.0.0.1]/", "https://localhost/x" })
        {
            await (await client.PostAsJsonAsync("/v1/webhooks/endpoints", new { url })).AssertError(HttpStatusCode.BadRequest, "url_not_allowed", "url");
        }

        await (await client.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "http://example.com/hooks" })).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "url");
        await (await client.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "not a url" })).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "url");
        await (await client.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "https://example.com/hooks", events = new[] { "nope" } })).AssertError(HttpStatusCode.BadRequest, "invalid_parameter", "events");
    }

    private static WebhookSender Sender(string[] allowed)
    {
        var outbound = Options.Create(new OutboundOptions { AllowedHosts = [.. allowed] });
        return new WebhookSender(new DestinationPolicy(outbound), Options.Create(new WebhooksOptions()), TimeProvider.System);
    }
}
