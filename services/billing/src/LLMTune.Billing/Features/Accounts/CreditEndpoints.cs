using LLMTune.Billing.Features.Admission;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing.Features.Accounts;

public sealed record CreditRequest(decimal? AmountUsd, string? Reference);

public sealed record CreditView(string WorkspaceId, string Reference, decimal AmountUsd, decimal BalanceUsd, bool Applied);

/// <summary>
/// Operator top-ups, served by billing (which owns balances); in split mode the gateway checks the operator token and
/// that the workspace exists (<see cref="UseCreditTargetCheck"/>), then forwards.
/// </summary>
public static class CreditEndpoints
{
    public const decimal MaxTopUpUsd = 1_000_000m;
    public const string Route = "/admin/workspaces/{id}/credits";

    /// <summary>The gateway's part: 404 for a workspace it does not have, before the endpoint or the proxy runs.</summary>
    public static void UseCreditTargetCheck(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var segments = http.Request.Path.Value?.Trim('/').Split('/');
        if (HttpMethods.IsPost(http.Request.Method) && segments is ["admin", "workspaces", var id, "credits"] && http.User.IsInRole(OperatorPolicy.Role)
            && !await http.RequestServices.GetRequiredService<WorkspacePlans>().ExistsAsync(id, http.RequestAborted))
        {
            throw ApiException.NotFound("workspace_not_found", $"No workspace '{id}'.");
        }

        await next(http);
    });

    public static void MapCreditEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost(Route, async (string id, CreditRequest request, Balances accounts, CancellationToken ct) =>
        {
            if (request.AmountUsd is not { } amount || amount <= 0 || amount > MaxTopUpUsd || decimal.Round(amount, 6) != amount)
            {
                throw ApiException.Invalid("amountUsd", $"amountUsd must be a positive amount of at most {MaxTopUpUsd} with at most 6 decimals.");
            }

            var reference = request.Reference?.Trim();
            if (string.IsNullOrEmpty(reference) || reference.Length > 128)
            {
                throw ApiException.Invalid("reference", "reference is required (1-128 characters): the same reference is applied once.");
            }

            var result = await accounts.CreditAsync(id, Money.ToMicros(amount), reference, ct);
            return Results.Ok(new CreditView(id, reference, amount, Money.ToUsd(result.BalanceMicros), result.Applied));
        }).RequireAuthorization(OperatorPolicy.Name).WithTags("Administration");
    }
}
