using LLMTune.Gateway.ApiKeys;
using LLMTune.Platform.Http;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.Logging;

namespace LLMTune.Gateway.Workspaces;

public sealed record CreatedWorkspace(Workspace Workspace, ApiKey Key, string Secret);

/// <summary>Operator-side workspace administration, shared by the <c>/admin</c> API and the <c>llmtune admin</c> commands.</summary>
public sealed class WorkspaceService(IDocumentStore store, ApiKeyService apiKeys, TimeProvider time, ILogger<WorkspaceService> logger)
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
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        await workspaces.InsertAsync(workspace, ct);
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

        var id = workspace.Id;
        return await workspaces.FindOneAndUpdateAsync(w => w.Id == id, w => w.Plan = plan, null, ct);
    }
}
