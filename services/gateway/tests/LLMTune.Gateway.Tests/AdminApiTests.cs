using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using LLMTune.Testing;

namespace LLMTune.Gateway.Tests;

public sealed class AdminApiTests : IAsyncLifetime
{
    private const string OperatorToken = "operator-token-for-tests-0123456789";
    private TestHost host = null!;

    public async ValueTask InitializeAsync() =>
        host = await TestHost.StartAsync(settings: new Dictionary<string, string?> { ["Admin:OperatorToken"] = OperatorToken });

    public ValueTask DisposeAsync() => host.DisposeAsync();

    private HttpClient Operator()
    {
        var client = host.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken);
        return client;
    }

    [Fact]
    public async Task Admin_needs_the_operator_token_not_an_api_key()
    {
        await (await host.Client().GetAsync("/admin/workspaces")).AssertError(HttpStatusCode.Unauthorized, "invalid_operator_token");
        await (await host.Client(host.InitialKey).GetAsync("/admin/workspaces")).AssertError(HttpStatusCode.Unauthorized);
        using var wrong = host.Client();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken + "x");
        await (await wrong.GetAsync("/admin/workspaces")).AssertError(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Create_workspace_list_and_set_plan()
    {
        using var admin = Operator();
        var created = await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = "acme" })).Json(HttpStatusCode.Created);
        var workspaceId = created.GetProperty("workspace").GetProperty("id").GetString()!;
        var secret = created.GetProperty("apiKey").GetProperty("key").GetString()!;
        Assert.Equal("sandbox", created.GetProperty("workspace").GetProperty("plan").GetString());

        Assert.Equal(HttpStatusCode.OK, (await host.Client(secret).GetAsync("/v1/keys")).StatusCode);
        await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = "acme" })).AssertError(HttpStatusCode.Conflict, "workspace_exists");
        await (await admin.PostAsJsonAsync("/admin/workspaces", new { name = "bad name!" })).AssertError(HttpStatusCode.BadRequest);

        var list = await (await admin.GetAsync("/admin/workspaces")).Json();
        Assert.Contains(list.GetProperty("data").EnumerateArray(), w => w.GetProperty("id").GetString() == workspaceId);
        Assert.DoesNotContain(secret, list.ToString());

        var updated = await (await admin.PutAsJsonAsync($"/admin/workspaces/{workspaceId}/plan", new { plan = "growth" })).Json();
        Assert.Equal("growth", updated.GetProperty("plan").GetString());
        await (await admin.PutAsJsonAsync($"/admin/workspaces/{workspaceId}/plan", new { plan = "gold" })).AssertError(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync("/admin/workspaces/ws_missing/plan", new { plan = "growth" })).AssertError(HttpStatusCode.NotFound);
    }
}
