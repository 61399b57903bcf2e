using System.Net;
using System.Net.Http.Json;
using System.Text;
using LLMTune.Testing;

namespace LLMTune.Gateway.Tests;

public sealed class ErrorShapeTests : IAsyncLifetime
{
    private TestHost host = null!;

    public async ValueTask InitializeAsync() =>
        host = await TestHost.StartAsync(settings: new Dictionary<string, string?> { ["Http:MaxRequestBodyBytes"] = "2048" });

    public ValueTask DisposeAsync() => host.DisposeAsync();

    private Task<HttpResponseMessage> PostKeys(string body, string contentType = "application/json") =>
        host.Client(host.InitialKey).PostAsync("/v1/keys", new StringContent(body, Encoding.UTF8, contentType));

    [Fact]
    public async Task Malformed_json_is_400() =>
        await (await PostKeys("{\"name\": ")).AssertError(HttpStatusCode.BadRequest, "invalid_json");

    [Fact]
    public async Task Wrong_json_types_are_400() =>
        await (await PostKeys("{\"name\": 42}")).AssertError(HttpStatusCode.BadRequest, "invalid_json");

    [Fact]
    public async Task Missing_required_field_names_the_parameter()
    {
        var error = await (await PostKeys("{}")).AssertError(HttpStatusCode.BadRequest, "invalid_parameter");
        Assert.Equal("name", error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Wrong_content_type_is_415() =>
        await (await PostKeys("name=ci", "application/x-www-form-urlencoded")).AssertError(HttpStatusCode.UnsupportedMediaType);

    [Fact]
    public async Task Oversized_body_is_413() =>
        await (await PostKeys($"{{\"name\": \"{new string('x', 4096)}\"}}")).AssertError(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");

    [Fact]
    public async Task Unknown_route_is_404() =>
        await (await host.Client(host.InitialKey).GetAsync("/v1/does-not-exist")).AssertError(HttpStatusCode.NotFound);

    [Fact]
    public async Task Wrong_method_is_405() =>
        await (await host.Client(host.InitialKey).PutAsJsonAsync("/v1/keys", new { name = "x" })).AssertError(HttpStatusCode.MethodNotAllowed);

    [Fact]
    public async Task Client_request_id_is_echoed_and_appears_in_errors()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/does-not-exist");
        request.Headers.Add("x-request-id", "client-trace-0001");
        var response = await host.Client(host.InitialKey).SendAsync(request);
        var error = await response.AssertError(HttpStatusCode.NotFound);
        Assert.Equal("client-trace-0001", error.GetProperty("requestId").GetString());
    }

    [Fact]
    public async Task Badly_formed_client_request_id_is_replaced()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/healthz");
        request.Headers.TryAddWithoutValidation("x-request-id", "bad id with spaces");
        var response = await host.Client().SendAsync(request);
        Assert.StartsWith("req_", response.Headers.GetValues("x-request-id").Single());
    }

    [Fact]
    public async Task Health_metrics_and_docs_are_served()
    {
        using var client = host.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        var ready = await (await client.GetAsync("/readyz")).Json();
        Assert.Equal("Healthy", ready.GetProperty("status").GetString());
        Assert.Contains("# TYPE", await client.GetStringAsync("/metrics"));
        Assert.Contains("/v1/keys", await client.GetStringAsync("/openapi/v1.json"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/docs/")).StatusCode);
    }
}
