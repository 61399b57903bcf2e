using LLMTune.Billing.Features.Plans;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Billing.Features.Accounts;

public sealed record CreditRequest(decimal? AmountUsd, string? Reference);

public sealed record CreditView(string WorkspaceId, string Reference, decimal AmountUsd, decimal BalanceUsd, bool Applied);

/// <summary>Operator top-ups, served by the gateway process beside the rest of <c>/admin</c>.</summary>
public static class CreditEndpoints
{
    public const decimal MaxTopUpUsd = 1_000_000m;

    public static void MapCreditEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/admin/workspaces/{id}/credits", async (string id, CreditRequest request, IDocumentStore store, Balances accounts, CancellationToken ct) =>
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

            if (await store.Collection<WorkspacePlan>(WorkspacePlan.Collection).GetAsync(id, ct) is null)
            {
                throw ApiException.NotFound("workspace_not_found", $"No workspace '{id}'.");
            }

            var result = await accounts.CreditAsync(id, Money.ToMicros(amount), reference, ct);
            return Results.Ok(new CreditView(id, reference, amount, Money.ToUsd(result.BalanceMicros), result.Applied));
        }).RequireAuthorization(OperatorPolicy.Name).WithTags("Administration");
    }
}
