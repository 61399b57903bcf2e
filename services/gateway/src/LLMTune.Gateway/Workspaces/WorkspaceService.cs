using LLMTune.Contracts;
using LLMTune.Gateway.ApiKeys;
using LLMTune.Platform.Http;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Logging;

namespace LLMTune.Gateway.Workspaces;

public sealed record CreatedWorkspace(Workspace Workspace, ApiKey Key, string Secret);

/// <summary>Operator-side workspace administration, shared by the <c>/admin</c> API and the <c>llmtune admin</c> commands.</summary>
/// <remarks>
/// The gateway owns workspaces and their plans; each plan it records is announced (<see cref="WorkspacePlanChanged"/>)
/// in the same write, for billing's prices and reports.
/// </remarks>
public sealed class WorkspaceService(IDocumentStore store, EventOutbox outbox, ApiKeyService apiKeys, TimeProvider time, ILogger<WorkspaceService> logger)
{
    private readonly IDocumentCollection<Workspace> workspaces = store.Collection<Workspace>(Workspace.Collection);

    public async Task EnsureIndexesAsync(CancellationToken ct)
    {
        await workspaces.EnsureIndexAsync(w => w.Name, unique: true, ct: ct);
        await apiKeys.EnsureIndexesAsync(ct);
    }

    /// <summary>Creates a workspace and its first key; the secret is returned once and never stored.</summary>
    /// <exception cref="DuplicateDocumentException">A workspace with this name exists.</exception>
    public async Task<CreatedWorkspace> CreateAsync(string name, string plan, CancellationToken ct)
    {
        var workspace = new Workspace
        {
            Id = RequestIdMiddleware.NewId("ws"),
            Name = name,
            Plan = plan,
            PlanSequence = 1,
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        await outbox.Write().Insert(workspaces, workspace).Add(PlanChanged(workspace)).CommitAsync(ct);
        var (key, secret) = await apiKeys.CreateAsync(workspace.Id, "default", expiresAt: null, ct);
        logger.LogInformation("Created workspace {WorkspaceId} ({Name}) on plan {Plan}", workspace.Id, name, plan);
        return new CreatedWorkspace(workspace, key, secret);
    }

    public Task<IReadOnlyList<Workspace>> ListAsync(CancellationToken ct) =>
        workspaces.FindAsync(_ => true, FindOptions<Workspace>.OrderByDescending(w => w.CreatedAt), ct);

    public Task<long> CountAsync(CancellationToken ct) => workspaces.CountAsync(_ => true, ct);

    public async Task<Workspace?> FindAsync(string idOrName, CancellationToken ct) =>
        await workspaces.GetAsync(idOrName, ct) ?? await workspaces.FindOneAsync(w => w.Name == idOrName, ct);

    public async Task<Workspace?> SetPlanAsync(string idOrName, string plan, CancellationToken ct)
    {
        var workspace = await FindAsync(idOrName, ct);
        if (workspace is null)
        {
            return null;
        }

        while (true)
        {
            workspace.Plan = plan;
            workspace.PlanSequence++;
            try
            {
                await outbox.Write().Replace(workspaces, workspace).Add(PlanChanged(workspace)).CommitAsync(ct);
                return workspace;
            }
            catch (ConcurrencyConflictException)
            {
                // Changed meanwhile (another plan change): apply this one to what is stored now.
                if (await workspaces.GetAsync(workspace.Id, ct) is not { } current)
                {
                    return null;
                }

                workspace = current;
            }
        }
    }

    private WorkspacePlanChanged PlanChanged(Workspace workspace) =>
        new(workspace.Id, RequestIdMiddleware.NewId("plan"), time.GetUtcNow(), workspace.Plan, workspace.PlanSequence);
}
