using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Gateway.Admin;

public sealed class AdminOptions
{
    public const string Section = "Admin";

    /// <summary>Bearer token for the /admin API (env <c>Admin__OperatorToken</c>); the API is closed while unset.</summary>
    [System.ComponentModel.DataAnnotations.MinLength(16, ErrorMessage = "Admin:OperatorToken must be at least 16 characters.")]
    public string? OperatorToken { get; set; }
}

/// <summary>The operator's bearer token guards /admin; compared in constant time.</summary>
public sealed class OperatorAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptions<AdminOptions> admin)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Operator";
    public const string Policy = OperatorPolicy.Name;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var expected = admin.Value.OperatorToken;
        var header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(expected) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var presented = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        if (!CryptographicOperations.FixedTimeEquals(presented, Encoding.UTF8.GetBytes(expected)))
        {
            return Task.FromResult(AuthenticateResult.Fail("Invalid operator token."));
        }

        var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Role, OperatorPolicy.Role)], SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ApiErrors.WriteAsync(Context, StatusCodes.Status401Unauthorized, "invalid_operator_token",
            string.IsNullOrEmpty(admin.Value.OperatorToken)
                ? "The admin API is disabled: set Admin__OperatorToken to enable it."
                : "Missing or invalid operator token.");
}
