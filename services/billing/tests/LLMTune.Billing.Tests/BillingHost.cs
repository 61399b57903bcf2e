using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace LLMTune.Billing.Tests;

/// <summary>The real single-process host on a fake clock, with the operator API open and training switched off.</summary>
public sealed class BillingHost : IAsyncDisposable
{
    public const string OperatorToken = "operator-token-for-billing-tests-0123";

    private BillingHost(TestHost host, FakeTimeProvider clock)
    {
        Host = host;
        Clock = clock;
    }

    public TestHost Host { get; }
    public FakeTimeProvider Clock { get; }

    public static async Task<BillingHost> StartAsync(DateTimeOffset now, IDictionary<string, string?>? settings = null)
    {
        var clock = new FakeTimeProvider(now);
        var all = new Dictionary<string, string?>
        {
            ["Admin:OperatorToken"] = OperatorToken,
            ["Finetune:Worker:Enabled"] = "false",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var host = await TestHost.StartAsync(settings: all, configure: b => b.Services.AddSingleton<TimeProvider>(clock));
        return new BillingHost(host, clock);
    }

    public HttpClient Operator()
    {
        var client = Host.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        return client;
    }

    /// <summary>Creates a workspace on a plan; returns its id and a client with its first key.</summary>
    public async Task<(string WorkspaceId, HttpClient Client)> WorkspaceAsync(string name, string plan = "sandbox")
    {
        using var admin = Operator();
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name, plan })).Json(HttpStatusCode.Created);
        return (created.GetProperty("workspace").GetProperty("id").GetString()!,
            Host.Client(created.GetProperty("apiKey").GetProperty("key").GetString()!));
    }

    public async Task<JsonElement> TopUpAsync(string workspaceId, decimal amountUsd, string reference)
    {
        using var admin = Operator();
        return await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd, reference })).Json();
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

public static class Headers
{
    public static string One(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : throw new Xunit.Sdk.XunitException($"no {name} header");
}
