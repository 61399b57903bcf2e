using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Identity;

/// <summary>Who is calling: the workspace and API key the gateway authenticated.</summary>
public static class WorkspaceClaims
{
    public const string WorkspaceId = "llmtune:workspace";
    public const string KeyId = "llmtune:key";

    /// <summary>
    /// Which fine-tune queue the workspace's plan gives a job it creates (<see cref="PriorityQueue"/> or
    /// <see cref="StandardQueue"/>): set by billing's admission in the gateway, only on <c>POST /v1/fine-tune</c>.
    /// </summary>
    public const string FineTunePriority = "llmtune:fine-tune-priority";
    public const string PriorityQueue = "priority";
    public const string StandardQueue = "standard";

    /// <summary>
    /// The server's own id of one authenticated request (<c>usage_…</c>, new for every request the gateway
    /// authenticates, forwarded to the service in split mode): what its token reservation and its charge are keyed by.
    /// Never the client's <c>x-request-id</c>, which a client may reuse and which only correlates logs.
    /// </summary>
    public const string UsageId = "llmtune:usage-id";

    /// <summary>
    /// This month's counted requests and created fine-tunes of the workspace, as the gateway's admission counts them:
    /// set on <c>GET /v1/billing</c> only, so billing reports them without reading the gateway's counters.
    /// </summary>
    public const string MonthRequests = "llmtune:month-requests";
    public const string MonthFineTunes = "llmtune:month-fine-tunes";

    /// <summary>A caller's principal; <paramref name="usageId"/> is the gateway's when forwarded, otherwise a new one.</summary>
    public static ClaimsPrincipal Principal(string workspaceId, string keyId, string scheme, string? usageId = null) =>
        new(new ClaimsIdentity(
            [new Claim(WorkspaceId, workspaceId), new Claim(KeyId, keyId), new Claim(UsageId, usageId ?? RequestIdMiddleware.NewId("usage"))], scheme));

    /// <summary>The caller's workspace; only valid on authenticated endpoints.</summary>
    public static string WorkspaceIdOf(this ClaimsPrincipal user) =>
        user.FindFirstValue(WorkspaceId) ?? throw new InvalidOperationException("No authenticated workspace on this request.");

    public static string KeyIdOf(this ClaimsPrincipal user) =>
        user.FindFirstValue(KeyId) ?? throw new InvalidOperationException("No authenticated key on this request.");

    public static string UsageIdOf(this ClaimsPrincipal user) =>
        user.FindFirstValue(UsageId) ?? throw new InvalidOperationException("No usage id on this request.");
}

/// <summary>
/// Headers the gateway sets on proxied requests in split mode. Services trust them only together with the
/// internal secret, so calling a service directly (bypassing the gateway) gets nothing.
/// </summary>
public static class InternalHeaders
{
    public const string WorkspaceId = "x-llmtune-workspace-id";
    public const string KeyId = "x-llmtune-key-id";
    public const string Secret = "x-llmtune-internal-secret";
    public const string FineTunePriority = "x-llmtune-fine-tune-priority";
    public const string UsageId = "x-llmtune-usage-id";
    public const string MonthRequests = "x-llmtune-month-requests";
    public const string MonthFineTunes = "x-llmtune-month-fine-tunes";

    /// <summary>The operator (<c>/admin</c> routes a service owns, e.g. billing's top-ups): <c>true</c>, no workspace.</summary>
    public const string Operator = "x-llmtune-operator";

    public static readonly string[] All = [WorkspaceId, KeyId, Secret, FineTunePriority, UsageId, MonthRequests, MonthFineTunes, Operator];

    /// <summary>Claims that travel with a request as the header beside them (the gateway sets them, services restore them).</summary>
    public static readonly (string Claim, string Header)[] Forwarded =
    [
        (WorkspaceClaims.FineTunePriority, FineTunePriority),
        (WorkspaceClaims.MonthRequests, MonthRequests),
        (WorkspaceClaims.MonthFineTunes, MonthFineTunes),
    ];
}

public sealed class InternalAuthOptions
{
    public const string Section = "Internal";

    /// <summary>Shared secret between the gateway and the services (env <c>Internal__Secret</c>).</summary>
    public string? Secret { get; set; }
}

/// <summary>Authenticates split-mode service requests from the gateway's identity headers.</summary>
public sealed class InternalIdentityHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptions<InternalAuthOptions> internalOptions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Internal";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var expected = internalOptions.Value.Secret;
        var presented = Request.Headers[InternalHeaders.Secret].ToString();
        if (string.IsNullOrEmpty(expected) || presented.Length == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected)))
        {
            return Task.FromResult(AuthenticateResult.Fail("Invalid internal secret."));
        }

        if (Request.Headers[InternalHeaders.Operator].ToString() == "true")
        {
            var operatorPrincipal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Role, OperatorPolicy.Role)], SchemeName));
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(operatorPrincipal, SchemeName)));
        }

        var workspace = Request.Headers[InternalHeaders.WorkspaceId].ToString();
        var key = Request.Headers[InternalHeaders.KeyId].ToString();
        if (workspace.Length == 0 || key.Length == 0)
        {
            return Task.FromResult(AuthenticateResult.Fail("Missing identity headers."));
        }

        var usageId = Request.Headers[InternalHeaders.UsageId].ToString();
        var principal = WorkspaceClaims.Principal(workspace, key, SchemeName, usageId.Length > 0 ? usageId : null);
        foreach (var (claim, header) in InternalHeaders.Forwarded)
        {
            if (Request.Headers[header].ToString() is { Length: > 0 } value)
            {
                ((ClaimsIdentity)principal.Identity!).AddClaim(new Claim(claim, value));
            }
        }

        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ApiErrors.WriteAsync(Context, StatusCodes.Status401Unauthorized, "unauthenticated",
            "This service only accepts requests forwarded by the LLMTune gateway.");
}

/// <summary>The authorization policy of operator endpoints (<c>/admin</c>); the gateway registers it with its operator token scheme.</summary>
public static class OperatorPolicy
{
    public const string Name = "Operator";
    public const string Role = "operator";
}
