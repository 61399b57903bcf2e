using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LLMTune.Billing.Features.Admission;
using LLMTune.Billing.Features.Plans;
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

    /// <summary>
    /// Creates a workspace on a plan; returns its id and a client with its first key, once billing's copy of its plan
    /// (from <c>WorkspacePlanChanged</c>) has it, so charges are priced by it.
    /// </summary>
    public async Task<(string WorkspaceId, HttpClient Client)> WorkspaceAsync(string name, string plan = "sandbox")
    {
        using var admin = Operator();
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name, plan })).Json(HttpStatusCode.Created);
        var id = created.GetProperty("workspace").GetProperty("id").GetString()!;
        await BilledAsAsync(id, plan);
        return (id, Host.Client(created.GetProperty("apiKey").GetProperty("key").GetString()!));
    }

    /// <summary>Waits until billing's copy of the workspace's plan is <paramref name="plan"/>.</summary>
    public Task BilledAsAsync(string workspaceId, string plan) =>
        Eventually.True(async () => (await Host.Services.GetRequiredService<PlanView>().ForWorkspaceAsync(workspaceId, CancellationToken.None)).Plan == plan,
            what: $"billing to hear that {workspaceId} is on {plan}");

    /// <summary>Tops up; when that leaves credits, returns once the gateway's admission has heard (AccountStatusChanged).</summary>
    public async Task<JsonElement> TopUpAsync(string workspaceId, decimal amountUsd, string reference)
    {
        using var admin = Operator();
        var result = await (await admin.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/credits", new { amountUsd, reference })).Json();
        if (result.GetProperty("balanceUsd").GetDecimal() > 0)
        {
            await AdmissionSeesCreditsAsync(workspaceId, true);
        }

        return result;
    }

    public Task AdmissionSeesCreditsAsync(string workspaceId, bool hasCredits) =>
        Eventually.True(async () => await Host.Services.GetRequiredService<AccountStandings>().HasCreditsAsync(workspaceId, CancellationToken.None) == hasCredits,
            what: $"the gateway to hear that {workspaceId} {(hasCredits ? "has" : "has no")} credits");

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

public static class Headers
{
    public static string One(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : throw new Xunit.Sdk.XunitException($"no {name} header");
}
