using System.Security.Claims;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace LLMTune.Webhooks;

public static class WebhookApi
{
    private const int MaxDescription = 500;

    public static void MapWebhookApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1/webhooks").WithTags("Webhooks");

        api.MapPost("/endpoints", async (CreateEndpointRequest request, ClaimsPrincipal user, DestinationPolicy policy, EndpointStore store,
            SecretProtector protector, TimeProvider time, CancellationToken ct) =>
        {
            var url = await policy.ValidateAsync(request.Url, "url", ct);
            var now = time.GetUtcNow().UtcDateTime;
            var secret = Signatures.NewSecret();
            var endpoint = new WebhookEndpoint
            {
                Id = "we_" + Guid.NewGuid().ToString("N"),
                WorkspaceId = user.WorkspaceIdOf(),
                Url = url.AbsoluteUri,
                Events = ValidEvents(request.Events),
                Description = ValidDescription(request.Description),
                Enabled = request.Enabled ?? true,
                Keys = [new SigningKey { Protected = protector.Protect(secret), CreatedAt = now }],
                CreatedAt = now,
                UpdatedAt = now,
            };
            await store.InsertAsync(endpoint, ct);
            return Results.Created($"/v1/webhooks/endpoints/{endpoint.Id}", EndpointView.From(endpoint, secret));
        });

        api.MapGet("/endpoints", async (int? limit, string? cursor, ClaimsPrincipal user, EndpointStore store, CancellationToken ct) =>
            Results.Ok((await store.ListAsync(user.WorkspaceIdOf(), PageRequest.From(limit, cursor), ct)).Select(e => EndpointView.From(e))));

        api.MapGet("/endpoints/{endpointId}", async (string endpointId, ClaimsPrincipal user, EndpointStore store, CancellationToken ct) =>
            Results.Ok(EndpointView.From(await store.GetAsync(user.WorkspaceIdOf(), endpointId, ct) ?? throw EndpointNotFound(endpointId))));

        api.MapPatch("/endpoints/{endpointId}", async (string endpointId, UpdateEndpointRequest request, ClaimsPrincipal user, DestinationPolicy policy,
            EndpointStore store, CancellationToken ct) =>
        {
            var url = request.Url is null ? null : (await policy.ValidateAsync(request.Url, "url", ct)).AbsoluteUri;
            var events = request.Events is null ? null : ValidEvents(request.Events);
            var description = ValidDescription(request.Description);
            var updated = await store.UpdateAsync(user.WorkspaceIdOf(), endpointId, e =>
            {
                e.Url = url ?? e.Url;
                e.Events = events ?? e.Events;
                e.Description = request.Description is null ? e.Description : description;
                if (request.Enabled is { } enabled && enabled != e.Enabled)
                {
                    e.Enabled = enabled;
                    e.DisabledReason = enabled ? null : "Disabled by request.";
                    e.DisabledAt = enabled ? null : e.UpdatedAt;
                    e.FailingSince = null;
                }
            }, ct);
            return Results.Ok(EndpointView.From(updated ?? throw EndpointNotFound(endpointId)));
        });

        api.MapDelete("/endpoints/{endpointId}", async (string endpointId, ClaimsPrincipal user, EndpointStore store, CancellationToken ct) =>
        {
            _ = await store.GetAsync(user.WorkspaceIdOf(), endpointId, ct) ?? throw EndpointNotFound(endpointId);
            await store.DeleteAsync(endpointId, ct);
            return Results.Ok(new { id = endpointId, deleted = true });
        });

        api.MapPost("/endpoints/{endpointId}/rotate-secret", async (string endpointId, ClaimsPrincipal user, EndpointStore store,
            SecretProtector protector, TimeProvider time, IOptions<WebhooksOptions> options, CancellationToken ct) =>
        {
            var secret = Signatures.NewSecret();
            var sealedSecret = protector.Protect(secret);
            var now = time.GetUtcNow().UtcDateTime;
            var rotated = await store.UpdateAsync(user.WorkspaceIdOf(), endpointId, e => e.Keys = e.Keys.Rotate(sealedSecret, now, options.Value.RotationOverlap), ct);
            return Results.Ok(EndpointView.From(rotated ?? throw EndpointNotFound(endpointId), secret));
        });

        api.MapPost("/endpoints/{endpointId}/test", async (string endpointId, ClaimsPrincipal user, EndpointStore store, DeliveryIntake intake, CancellationToken ct) =>
        {
            var endpoint = await store.GetAsync(user.WorkspaceIdOf(), endpointId, ct) ?? throw EndpointNotFound(endpointId);
            if (!endpoint.Enabled)
            {
                throw new ApiException(StatusCodes.Status409Conflict, "endpoint_disabled", $"Endpoint '{endpointId}' is disabled; enable it first.");
            }

            var delivery = await intake.AcceptTestAsync(endpoint, ct);
            return Results.Accepted($"/v1/webhooks/deliveries/{delivery.Id}", DeliveryView.From(delivery));
        });

        api.MapPost("/endpoints/{endpointId}/replay", async (string endpointId, ReplayRequest request, ClaimsPrincipal user, EndpointStore store,
            DeliveryStore deliveries, DeliverySignal signal, CancellationToken ct) =>
        {
            var endpoint = await store.GetAsync(user.WorkspaceIdOf(), endpointId, ct) ?? throw EndpointNotFound(endpointId);
            if (request.Since is not { } since)
            {
                throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", "since is required (ISO 8601).", "since");
            }

            var until = request.Until ?? DateTime.MaxValue;
            if (until < since)
            {
                throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", "until must not be before since.", "until");
            }

            if (!endpoint.Enabled)
            {
                throw new ApiException(StatusCodes.Status409Conflict, "endpoint_disabled", $"Endpoint '{endpointId}' is disabled; enable it first.");
            }

            var replayed = await deliveries.ReplayFailedAsync(endpoint.Id, since.ToUniversalTime(), until == DateTime.MaxValue ? until : until.ToUniversalTime(), ct);
            signal.Wake();
            return Results.Accepted(value: new { endpointId, replayed });
        });

        api.MapGet("/deliveries", async (int? limit, string? cursor, string? @event, string? status, string? endpointId, ClaimsPrincipal user,
            DeliveryStore deliveries, CancellationToken ct) =>
        {
            var page = PageRequest.From(limit, cursor);
            var wanted = status switch
            {
                null or "" => (DeliveryStatus?)null,
                "pending" => DeliveryStatus.Pending,
                "succeeded" => DeliveryStatus.Succeeded,
                "failed" => DeliveryStatus.Failed,
                _ => throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", "status must be pending, succeeded or failed.", "status"),
            };
            var list = await deliveries.ListAsync(user.WorkspaceIdOf(), page, string.IsNullOrEmpty(@event) ? null : @event, wanted,
                string.IsNullOrEmpty(endpointId) ? null : endpointId, ct);
            return Results.Ok(list.Select(DeliveryView.Summary));
        });

        api.MapGet("/deliveries/{deliveryId}", async (string deliveryId, ClaimsPrincipal user, DeliveryStore deliveries, CancellationToken ct) =>
            Results.Ok(DeliveryView.From(await deliveries.GetAsync(user.WorkspaceIdOf(), deliveryId, ct) ?? throw DeliveryNotFound(deliveryId))));

        api.MapPost("/deliveries/{deliveryId}/resend", async (string deliveryId, ClaimsPrincipal user, DeliveryStore deliveries, DeliverySignal signal, CancellationToken ct) =>
        {
            var workspace = user.WorkspaceIdOf();
            var existing = await deliveries.GetAsync(workspace, deliveryId, ct) ?? throw DeliveryNotFound(deliveryId);
            var resent = await deliveries.ResendAsync(workspace, deliveryId, ct)
                ?? throw new ApiException(StatusCodes.Status409Conflict, "delivery_pending", $"Delivery '{existing.Id}' is still pending; it is sent again on its own.");
            signal.Wake();
            return Results.Accepted($"/v1/webhooks/deliveries/{resent.Id}", DeliveryView.From(resent));
        });

        api.MapGet("/secret", async (ClaimsPrincipal user, WorkspaceSecrets secrets, TimeProvider time, CancellationToken ct) =>
        {
            var (secret, plain) = await secrets.RevealAsync(user.WorkspaceIdOf(), ct);
            return Results.Ok(WorkspaceSecretView.From(secret, plain, time.GetUtcNow().UtcDateTime));
        });

        api.MapPost("/secret/rotate", async (ClaimsPrincipal user, WorkspaceSecrets secrets, TimeProvider time, CancellationToken ct) =>
        {
            var (secret, plain) = await secrets.RotateAsync(user.WorkspaceIdOf(), ct);
            return Results.Ok(WorkspaceSecretView.From(secret, plain, time.GetUtcNow().UtcDateTime));
        });
    }

    private static List<string> ValidEvents(List<string>? events)
    {
        var list = (events ?? []).Select(e => e?.Trim() ?? "").Distinct(StringComparer.Ordinal).ToList();
        if (list.FirstOrDefault(e => !WebhookEvent.Types.Contains(e)) is { } unknown)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter",
                $"Unknown event '{unknown}'; events are {string.Join(", ", WebhookEvent.Types)} (none listed: all).", "events");
        }

        return list;
    }

    private static string? ValidDescription(string? description) =>
        description is { Length: > MaxDescription }
            ? throw new ApiException(StatusCodes.Status400BadRequest, "invalid_parameter", $"description is longer than {MaxDescription} characters.", "description")
            : description;

    private static ApiException EndpointNotFound(string id) =>
        new(StatusCodes.Status404NotFound, "endpoint_not_found", $"No webhook endpoint '{id}' in this workspace.");

    private static ApiException DeliveryNotFound(string id) =>
        new(StatusCodes.Status404NotFound, "delivery_not_found", $"No webhook delivery '{id}' in this workspace.");
}
