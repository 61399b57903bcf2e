using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Platform.Http;
using LLMTune.Webhooks.Tests.Support;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Webhooks.Tests;

/// <summary>The 15 s answer limit (on the injected clock) and redirects, which are never followed.</summary>
public sealed class DeliveryLimitsTests
{
    [Fact]
    public async Task A_receiver_that_does_not_answer_within_15_seconds_fails_the_attempt()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        var release = new TaskCompletionSource();
        receiver.Then(new Reply(200, Hold: release.Task));
        using var sender = Sender(clock);

        var attempt = sender.SendAsync(receiver.Url(), "msg_slow", clock.GetUtcNow(), "{}", [Signatures.NewSecret()], CancellationToken.None);
        await Eventually.True(() => receiver.Requests.Count == 1, what: "the request to reach the receiver");
        clock.Advance(TimeSpan.FromSeconds(14.9));
        Assert.False(attempt.IsCompleted, "the attempt gave up before 15 s");
        clock.Advance(TimeSpan.FromSeconds(0.1));
        var outcome = await attempt.WaitAsync(TimeSpan.FromSeconds(30));
        release.SetResult();

        Assert.False(outcome.Succeeded);
        Assert.False(outcome.Refused);
        Assert.Null(outcome.StatusCode);
        Assert.Equal("No answer within 15 s.", outcome.Error);
    }

    [Fact]
    public async Task A_redirect_is_not_followed_even_to_an_allowed_host_and_counts_as_a_failure()
    {
        await using var target = await Receiver.StartAsync();
        await using var redirecting = await Receiver.StartAsync();
        redirecting.Then(new Reply(302, Location: target.Url()), new Reply(307, Location: "http://169.254.169.254/latest/meta-data/"));
        using var sender = Sender(TimeProvider.System);

        var toAllowed = await sender.SendAsync(redirecting.Url(), "msg_redirect", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);
        var toMetadata = await sender.SendAsync(redirecting.Url(), "msg_redirect", DateTimeOffset.UtcNow, "{}", [Signatures.NewSecret()], CancellationToken.None);

        Assert.Equal(302, toAllowed.StatusCode);
        Assert.False(toAllowed.Succeeded);
        Assert.Contains($"Redirects are not followed (answered 302 to {target.Url()})", toAllowed.Error, StringComparison.Ordinal);
        Assert.Equal(307, toMetadata.StatusCode);
        Assert.False(toMetadata.Succeeded);
        Assert.Empty(target.Requests);
        Assert.Equal(2, redirecting.Requests.Count);
    }

    [Fact]
    public async Task On_the_host_a_timeout_and_a_redirect_are_failed_attempts_retried_on_schedule()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = await Receiver.StartAsync();
        await using var elsewhere = await Receiver.StartAsync();
        var release = new TaskCompletionSource();
        receiver.Then(new Reply(200, Hold: release.Task), new Reply(301, Location: elsewhere.Url()));
        await using var host = await WebhooksHost.StartAsync(clock);
        var (endpointId, _, workspace) = await host.CreateEndpointAsync(receiver.Url(), "batch.completed");

        var batch = new BatchCompleted(workspace, "req_limits", clock.GetUtcNow(), "batch_limits", "llmtune/tiny", 1, 0, null);
        await host.PublishAsync(batch);
        var deliveryId = DeliveryStore.IdFor(WebhookEvent.From(batch).Id, endpointId);
        await Eventually.True(() => receiver.Requests.Count == 1, what: "the first attempt to reach the receiver");
        clock.Advance(TimeSpan.FromSeconds(15));
        var timedOut = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("attemptCount").GetInt32() == 1 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, "the timed-out attempt");
        release.SetResult();
        Assert.Equal("pending", timedOut.GetProperty("status").GetString());
        Assert.Equal("No answer within 15 s.", timedOut.GetProperty("attempts")[0].GetProperty("error").GetString());

        clock.Advance(TimeSpan.FromSeconds(5));
        var redirected = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("attemptCount").GetInt32() == 2 && d.GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String, "the redirected attempt");
        Assert.Equal(301, redirected.GetProperty("attempts")[1].GetProperty("statusCode").GetInt32());
        Assert.Equal("pending", redirected.GetProperty("status").GetString());

        clock.Advance(TimeSpan.FromMinutes(5));
        var done = await host.WaitForDeliveryAsync(deliveryId, d => d.GetProperty("status").GetString() == "succeeded", "the third attempt");
        Assert.Equal(3, done.GetProperty("attemptCount").GetInt32());
        Assert.Empty(elsewhere.Requests);
    }

    private static WebhookSender Sender(TimeProvider clock) =>
        new(new DestinationPolicy(Options.Create(new OutboundOptions { AllowedHosts = ["127.0.0.1"] })), Options.Create(new WebhooksOptions()), clock);
}
