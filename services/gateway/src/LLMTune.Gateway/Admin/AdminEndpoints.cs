using LLMTune.Gateway.ApiKeys;
using LLMTune.Gateway.Workspaces;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Gateway.Admin;

public sealed record CreateWorkspaceRequest(string? Name, string? Plan);

public sealed record SetPlanRequest(string? Plan);

public sealed record WorkspaceView(string Id, string Name, string Plan, DateTime CreatedAt)
{
    public static WorkspaceView From(Workspace w) => new(w.Id, w.Name, w.Plan, w.CreatedAt);
}

public sealed record CreatedWorkspaceView(WorkspaceView Workspace, ApiKeyView ApiKey);

/// <summary>Operator administration over HTTP; the same operations as <c>llmtune admin …</c>.</summary>
public static class AdminEndpoints
{
    public static void MapAdminEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin").RequireAuthorization(OperatorAuthenticationHandler.Policy).WithTags("Administration");

        admin.MapPost("/workspaces", async (CreateWorkspaceRequest request, WorkspaceService workspaces, CancellationToken ct) =>
        {
            if (WorkspaceInput.ValidateName(request.Name) is { } nameError)
            {
                throw ApiException.Invalid("name", nameError);
            }

            var plan = request.Plan ?? Plans.Sandbox;
            if (WorkspaceInput.ValidatePlan(plan) is { } planError)
            {
                throw ApiException.Invalid("plan", planError);
            }

            try
            {
                var created = await workspaces.CreateAsync(request.Name!.Trim(), plan, ct);
                return Results.Created($"/admin/workspaces/{created.Workspace.Id}",
                    new CreatedWorkspaceView(WorkspaceView.From(created.Workspace), ApiKeyView.From(created.Key, created.Secret)));
            }
            catch (DuplicateDocumentException)
            {
                throw ApiException.Conflict("workspace_exists", $"A workspace named '{request.Name}' already exists.");
            }
        });

        admin.MapGet("/workspaces", async (WorkspaceService workspaces, CancellationToken ct) =>
        {
            var all = await workspaces.ListAsync(ct);
            return Results.Ok(new Page<WorkspaceView>(all.Select(WorkspaceView.From).ToList(), false, null));
        });

        admin.MapPut("/workspaces/{id}/plan", async (string id, SetPlanRequest request, WorkspaceService workspaces, CancellationToken ct) =>
        {
            if (WorkspaceInput.ValidatePlan(request.Plan) is { } planError)
            {
                throw ApiException.Invalid("plan", planError);
            }

            return await workspaces.SetPlanAsync(id, request.Plan!, ct) is { } updated
                ? Results.Ok(WorkspaceView.From(updated))
                : throw ApiException.NotFound("workspace_not_found", $"No workspace '{id}'.");
        });
    }
}

/// <summary>Input rules shared by the admin API and the admin commands.</summary>
public static class WorkspaceInput
{
    public static string? ValidateName(string? name) =>
        string.IsNullOrWhiteSpace(name) || name.Trim().Length > 64 || !name.Trim().All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? "name is required: 1-64 letters, digits, '-', '_' or '.'."
            : null;

    public static string? ValidatePlan(string? plan) =>
        plan is not null && Plans.All.Contains(plan) ? null : $"plan must be one of: {string.Join(", ", Plans.All)}.";
}
