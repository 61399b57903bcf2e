using System.Net;
using System.Net.Http.Json;
using LLMTune.Contracts;
using LLMTune.Gateway.ApiKeys;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Storage;
using LLMTune.Testing;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Gateway.Tests;

public sealed class KeyLifecycleTests : IAsyncLifetime
{
    private readonly FakeTimeProvider time = new(DateTimeOffset.UtcNow);
    private TestHost host = null!;

    public async ValueTask InitializeAsync() =>
        host = await TestHost.StartAsync(configure: b => b.Services.AddSingleton<TimeProvider>(time));

    public ValueTask DisposeAsync() => host.DisposeAsync();

    private Task<HttpResponseMessage> ListKeys(string key) => host.Client(key).GetAsync("/v1/keys");

    private async Task<(string Id, string Secret)> CreateKey(string withKey, string name, DateTime? expiresAt = null)
    {
        var created = await (await host.Client(withKey).PostAsJsonAsync("/v1/keys", new { name, expiresAt })).Json(HttpStatusCode.Created);
        var secret = created.GetProperty("key").GetString()!;
        Assert.StartsWith("sk_live_", secret);
        Assert.True(secret.Length >= "sk_live_".Length + 43);
        Assert.Equal(secret[..12], created.GetProperty("prefix").GetString());
        return (created.GetProperty("id").GetString()!, secret);
    }

    [Fact]
    public async Task Create_use_list_revoke()
    {
        var (id, secret) = await CreateKey(host.InitialKey, "ci");

        var list = await ListKeys(secret);
        var body = await list.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Contains(id, body);
        Assert.DoesNotContain(secret, body);
        Assert.DoesNotContain(host.InitialKey, body);
        Assert.DoesNotContain("\"key\"", body);
        var listed = (await list.Json()).GetProperty("data").EnumerateArray().Single(k => k.GetProperty("id").GetString() == id);
        Assert.Equal("ci", listed.GetProperty("name").GetString());
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, listed.GetProperty("lastUsedAt").ValueKind);

        (await (await host.Client(host.InitialKey).DeleteAsync($"/v1/keys/{id}")).Json()).GetProperty("revokedAt").GetString();

        // Takes effect at once: no waiting for a cache to expire.
        var error = await (await ListKeys(secret)).AssertError(HttpStatusCode.Unauthorized, "invalid_api_key");
        Assert.Contains("revoked", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(host.InitialKey)).StatusCode);
    }

    [Fact]
    public async Task A_key_revoked_by_another_gateway_replica_stops_working_here_once_the_change_is_announced()
    {
        var (id, secret) = await CreateKey(host.InitialKey, "elsewhere");
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(secret)).StatusCode); // verified, and now cached here

        // Another replica revokes it: the shared store changes, this replica's cache does not.
        var keys = host.Services.GetRequiredService<IDocumentStore>().Collection<ApiKey>(ApiKey.Collection);
        var revoked = await keys.FindOneAndUpdateAsync(k => k.Id == id, k => k.RevokedAt = time.GetUtcNow().UtcDateTime, null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(secret)).StatusCode); // the clock is frozen, so the cache TTL never runs out

        // That replica announces the change; every replica (this one included) forgets the key.
        await host.Services.GetRequiredService<IBus>().Publish(
            new ApiKeyChanged(revoked!.WorkspaceId, id, time.GetUtcNow(), id), TestContext.Current.CancellationToken);
        await Eventually.True(async () => (await ListKeys(secret)).StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(10), "the revoked key to be refused");
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(host.InitialKey)).StatusCode);
    }

    [Fact]
    public async Task Rotation_keeps_the_old_secret_during_the_grace_period_only()
    {
        var (id, oldSecret) = await CreateKey(host.InitialKey, "rotating");
        var rotated = await (await host.Client(host.InitialKey).PostAsJsonAsync($"/v1/keys/{id}/rotate", new { gracePeriodSeconds = 3600 })).Json();
        var newSecret = rotated.GetProperty("key").GetString()!;
        Assert.NotEqual(oldSecret, newSecret);
        Assert.Equal(id, rotated.GetProperty("id").GetString());

        Assert.Equal(HttpStatusCode.OK, (await ListKeys(oldSecret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(newSecret)).StatusCode);

        time.Advance(TimeSpan.FromMinutes(61));
        await (await ListKeys(oldSecret)).AssertError(HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(newSecret)).StatusCode);
    }

    [Fact]
    public async Task Rotation_defaults_to_24_hours_and_zero_means_immediate()
    {
        var (id, first) = await CreateKey(host.InitialKey, "default-grace");
        var second = (await (await host.Client(host.InitialKey).PostAsync($"/v1/keys/{id}/rotate", null)).Json()).GetProperty("key").GetString()!;
        time.Advance(TimeSpan.FromHours(23));
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(first)).StatusCode);
        time.Advance(TimeSpan.FromHours(2));
        await (await ListKeys(first)).AssertError(HttpStatusCode.Unauthorized);

        var third = (await (await host.Client(second).PostAsJsonAsync($"/v1/keys/{id}/rotate", new { gracePeriodSeconds = 0 })).Json()).GetProperty("key").GetString()!;
        await (await ListKeys(second)).AssertError(HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(third)).StatusCode);
    }

    [Fact]
    public async Task Expired_key_is_refused()
    {
        var (_, secret) = await CreateKey(host.InitialKey, "short-lived", time.GetUtcNow().UtcDateTime.AddHours(1));
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(secret)).StatusCode);
        time.Advance(TimeSpan.FromHours(2));
        var error = await (await ListKeys(secret)).AssertError(HttpStatusCode.Unauthorized, "invalid_api_key");
        Assert.Contains("expired", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Bearer not-a-key")]
    [InlineData("Bearer sk_live_0000000000000000000000000000000000000000000")]
    public async Task Missing_malformed_or_unknown_keys_get_401(string? authorization)
    {
        using var client = host.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/keys");
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        await (await client.SendAsync(request)).AssertError(HttpStatusCode.Unauthorized, "invalid_api_key");
    }

    [Fact]
    public async Task Another_workspaces_key_ids_answer_404()
    {
        var other = await host.Services.GetRequiredService<WorkspaceService>().CreateAsync("other", Plans.Sandbox, CancellationToken.None);
        using var mine = host.Client(host.InitialKey);
        await (await mine.DeleteAsync($"/v1/keys/{other.Key.Id}")).AssertError(HttpStatusCode.NotFound, "key_not_found");
        await (await mine.PostAsync($"/v1/keys/{other.Key.Id}/rotate", null)).AssertError(HttpStatusCode.NotFound);
        await (await mine.GetAsync($"/v1/keys/{other.Key.Id}")).AssertError(HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await ListKeys(other.Secret)).StatusCode);
        Assert.DoesNotContain(other.Key.Id, await (await ListKeys(host.InitialKey)).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Listing_paginates_newest_first()
    {
        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await CreateKey(host.InitialKey, $"k{i}");
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await (await host.Client(host.InitialKey).GetAsync($"/v1/keys?limit=2{(cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")}")).Json();
            seen.AddRange(page.GetProperty("data").EnumerateArray().Select(k => k.GetProperty("name").GetString()!));
            cursor = page.GetProperty("hasMore").GetBoolean() ? page.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);

        Assert.Equal(["k4", "k3", "k2", "k1", "k0", "default"], seen);
        await (await host.Client(host.InitialKey).GetAsync("/v1/keys?limit=1000")).AssertError(HttpStatusCode.BadRequest, "invalid_parameter");
        await (await host.Client(host.InitialKey).GetAsync("/v1/keys?cursor=garbage!")).AssertError(HttpStatusCode.BadRequest);
    }
}
