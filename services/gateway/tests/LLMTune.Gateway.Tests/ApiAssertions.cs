using System.Net;
using System.Text.Json;

namespace LLMTune.Gateway.Tests;

internal static class ApiAssertions
{
    /// <summary>Asserts the status and the error shape of DESIGN.md; returns the error object.</summary>
    public static async Task<JsonElement> AssertError(this HttpResponseMessage response, HttpStatusCode status, string? code = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()));
        Assert.True(error.TryGetProperty("param", out _));
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }

        var requestId = error.GetProperty("requestId").GetString();
        Assert.Equal(requestId, response.Headers.GetValues("x-request-id").Single());
        return error;
    }

    public static async Task<JsonElement> Json(this HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
