using System.Net;
using System.Text.Json;
using Xunit;

namespace LLMTune.Testing;

public static class ApiAssertions
{
    /// <summary>Asserts the status and the error shape (docs/architecture.md); returns the error object.</summary>
    public static async Task<JsonElement> AssertError(this HttpResponseMessage response, HttpStatusCode status, string? code = null, string? param = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()));
        Assert.True(error.TryGetProperty("param", out var actualParam));
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }

        if (param is not null)
        {
            Assert.Equal(param, actualParam.GetString());
        }

        Assert.Equal(error.GetProperty("requestId").GetString(), response.Headers.GetValues("x-request-id").Single());
        return error.Clone();
    }

    public static async Task<JsonElement> Json(this HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
