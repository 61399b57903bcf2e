using System.Text.Encodings.Web;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Gateway.ApiKeys;

/// <summary><c>Authorization: Bearer sk_live_…</c> on every /v1 route; failures answer 401 in the error shape.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyService apiKeys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private const string FailureItem = "llmtune:auth-failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Fail("Authorization header must be 'Bearer <api key>'.");
        }

        var verification = await apiKeys.VerifyAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted);
        if (verification.Result != KeyCheck.Valid)
        {
            return Fail(verification.Message);
        }

        var key = verification.Key!;
        return AuthenticateResult.Success(new AuthenticationTicket(WorkspaceClaims.Principal(key.WorkspaceId, key.Id, SchemeName), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var message = Context.Items[FailureItem] as string ?? "Missing API key. Send Authorization: Bearer sk_live_…";
        return ApiErrors.WriteAsync(Context, StatusCodes.Status401Unauthorized, "invalid_api_key", message);
    }

    private AuthenticateResult Fail(string message)
    {
        Context.Items[FailureItem] = message;
        return AuthenticateResult.Fail(message);
    }
}
