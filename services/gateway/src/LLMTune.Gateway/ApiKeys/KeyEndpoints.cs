using System.Security.Claims;
using System.Text.Json.Serialization;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Gateway.ApiKeys;

public sealed record CreateKeyRequest(string? Name, DateTime? ExpiresAt);

public sealed record RotateKeyRequest(long? GracePeriodSeconds);

/// <summary>A key as clients see it: never the secret, except <see cref="Key"/> right after creation or rotation.</summary>
public sealed record ApiKeyView(
    string Id, string Name, string Prefix, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? ExpiresAt, DateTime? RevokedAt,
    DateTime? PreviousKeyExpiresAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key = null)
{
    public static ApiKeyView From(ApiKey k, string? secret = null) =>
        new(k.Id, k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt, k.ExpiresAt, k.RevokedAt, k.PreviousSecretExpiresAt, secret);
}

/// <summary>Workspace members manage their own keys with a key of the same workspace.</summary>
public static class KeyEndpoints
{
    private static readonly TimeSpan MaxGrace = TimeSpan.FromDays(30);

    public static void MapKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/v1/keys").WithTags("API keys");

        keys.MapPost("", async (CreateKeyRequest request, ClaimsPrincipal user, ApiKeyService service, TimeProvider time, CancellationToken ct) =>
        {
            var name = request.Name?.Trim();
            if (string.IsNullOrEmpty(name) || name.Length > 100)
            {
                throw ApiException.Invalid("name", "name is required (1-100 characters).");
            }

            if (request.ExpiresAt is { } expires && expires.ToUniversalTime() <= time.GetUtcNow().UtcDateTime)
            {
                throw ApiException.Invalid("expiresAt", "expiresAt must be in the future.");
            }

            var (key, secret) = await service.CreateAsync(user.WorkspaceIdOf(), name, request.ExpiresAt?.ToUniversalTime(), ct);
            return Results.Created($"/v1/keys/{key.Id}", ApiKeyView.From(key, secret));
        });

        keys.MapGet("", async (int? limit, string? cursor, ClaimsPrincipal user, ApiKeyService service, CancellationToken ct) =>
        {
            var page = await service.ListAsync(user.WorkspaceIdOf(), PageRequest.From(limit, cursor), ct);
            return Results.Ok(page.Select(k => ApiKeyView.From(k)));
        });

        keys.MapGet("/{id}", async (string id, ClaimsPrincipal user, ApiKeyService service, CancellationToken ct) =>
            await service.GetAsync(user.WorkspaceIdOf(), id, ct) is { } key
                ? Results.Ok(ApiKeyView.From(key))
                : throw KeyNotFound(id));

        keys.MapDelete("/{id}", async (string id, ClaimsPrincipal user, ApiKeyService service, CancellationToken ct) =>
            await service.RevokeAsync(user.WorkspaceIdOf(), id, ct) is { } key
                ? Results.Ok(ApiKeyView.From(key))
                : throw KeyNotFound(id));

        keys.MapPost("/{id}/rotate", async (string id, RotateKeyRequest? request, ClaimsPrincipal user, ApiKeyService service, CancellationToken ct) =>
        {
            TimeSpan? grace = null;
            if (request?.GracePeriodSeconds is { } seconds)
            {
                if (seconds < 0 || seconds > MaxGrace.TotalSeconds)
                {
                    throw ApiException.Invalid("gracePeriodSeconds", $"gracePeriodSeconds must be between 0 and {MaxGrace.TotalSeconds:0}.");
                }

                grace = TimeSpan.FromSeconds(seconds);
            }

            return await service.RotateAsync(user.WorkspaceIdOf(), id, grace, ct) is { } rotated
                ? Results.Ok(ApiKeyView.From(rotated.Key, rotated.Secret))
                : throw KeyNotFound(id);
        });
    }

    private static ApiException KeyNotFound(string id) => ApiException.NotFound("key_not_found", $"No active API key '{id}' in this workspace.");
}
