using System.Net;
using System.Text.Json;

namespace LLMTune.Testing.BadInput;

/// <summary>Sends <see cref="BadRequestCase"/>s and says what is wrong with each answer: a 5xx, or a 4xx outside the error shape.</summary>
public sealed class BadRequestRunner(Uri address, string apiKey, string operatorToken) : IDisposable
{
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
    {
        BaseAddress = address,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>The status a case was answered with (0: no answer) and, when the answer is wrong, why.</summary>
    public sealed record Outcome(int Status, string? Problem);

    /// <summary>Sends the case; the outcome's problem is null when the answer is acceptable, else says why not.</summary>
    public async Task<Outcome> SendAsync(BadRequestCase badCase)
    {
        // A server that answers early (413 before the whole body is in) may reset the connection while the client is
        // still uploading, losing the answer; a fresh try gets it. One that never answers fails every try.
        HttpRequestException? lost = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                return await SendOnceAsync(badCase);
            }
            catch (HttpRequestException e)
            {
                lost = e;
            }
        }

        return new Outcome(0, $"no answer: {lost!.Message}");
    }

    private async Task<Outcome> SendOnceAsync(BadRequestCase badCase)
    {
        using var request = new HttpRequestMessage(new HttpMethod(badCase.Operation.Method), badCase.Path);
        // A connection of its own: a server that closes after an early answer (413, 401 before the body) leaves no
        // half-used connection for the next case to trip over.
        request.Headers.ConnectionClose = true;
        if (badCase.Body is not null)
        {
            request.Content = new ByteArrayContent(badCase.Body);
            if (badCase.ContentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", badCase.ContentType);
            }
        }

        var isAdmin = badCase.Operation.PathTemplate.StartsWith("/admin", StringComparison.Ordinal);
        var authorization = badCase.Credentials switch
        {
            Credentials.Valid => "Bearer " + (isAdmin ? operatorToken : apiKey),
            Credentials.OtherRealm => "Bearer " + (isAdmin ? apiKey : operatorToken),
            Credentials.EmptyBearer => "Bearer ",
            Credentials.UnknownBearer => "Bearer sk_live_notakeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            Credentials.WrongScheme => "Basic dXNlcjpwYXNz",
            _ => null,
        };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStringAsync();
        var status = (int)response.StatusCode;
        return new Outcome(status, Judge(badCase, response, status, body));
    }

    private static string? Judge(BadRequestCase badCase, HttpResponseMessage response, int status, string body)
    {
        if (RejectedByServer(response, body))
        {
            return null;
        }

        if (status >= 500)
        {
            return $"{status}: {Shorten(body)}";
        }

        if (badCase.Credentials != Credentials.Valid && response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return $"{status} instead of 401 for wrong credentials: {Shorten(body)}";
        }

        if (status >= 400)
        {
            return ErrorShapeProblem(response, body) is { } problem ? $"{status} outside the error shape ({problem}): {Shorten(body)}" : null;
        }

        // A stream that started fine may still end in an error event; a server error there is a crash too.
        return response.Content.Headers.ContentType?.MediaType == "text/event-stream" && body.Contains("\"server_error\"", StringComparison.Ordinal)
            ? $"{status} stream ending in a server error: {Shorten(body)}"
            : null;
    }

    /// <summary>
    /// Kestrel's own refusal of a request it never hands to the application (e.g. a NUL in the decoded path): 400,
    /// no body, connection closed, and so no request id. No application code can shape it (dotnet/aspnetcore#4726).
    /// </summary>
    public static bool RejectedByServer(HttpResponseMessage response, string body) =>
        response.StatusCode == HttpStatusCode.BadRequest && body.Length == 0 && response.Headers.ConnectionClose == true
        && !response.Headers.Contains("x-request-id");

    /// <summary>Why a body is not <c>{"error":{"message","type","param","code","requestId"}}</c> matching x-request-id; null when it is.</summary>
    public static string? ErrorShapeProblem(HttpResponseMessage response, string body)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
        {
            return $"content type {response.Content.Headers.ContentType?.MediaType ?? "none"}";
        }

        JsonElement error;
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("error", out error)
                || error.ValueKind != JsonValueKind.Object)
            {
                return "no error object";
            }

            error = error.Clone();
        }
        catch (JsonException)
        {
            return "not JSON";
        }

        foreach (var field in new[] { "message", "type", "code" })
        {
            if (!error.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
            {
                return $"no {field}";
            }
        }

        if (!error.TryGetProperty("param", out var param) || param.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
        {
            return "no param";
        }

        var requestId = response.Headers.TryGetValues("x-request-id", out var values) ? values.SingleOrDefault() : null;
        return error.TryGetProperty("requestId", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() == requestId && requestId is not null
            ? null
            : $"requestId does not match x-request-id {requestId ?? "(none)"}";
    }

    public void Dispose() => _client.Dispose();

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "…";
}
