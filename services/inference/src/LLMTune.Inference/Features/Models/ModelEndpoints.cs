using System.Security.Claims;
using LLMTune.Inference.Features.Deployment;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.OpenAiCompatible;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Models;

/// <summary>OpenAI's models API: list, retrieve, and delete (a workspace removes its own deployed fine-tunes).</summary>
public static class ModelEndpoints
{
    public static IResult List(ClaimsPrincipal user, ModelRegistry registry) =>
        OpenAiJson.Result(new ModelList("list", registry.ListFor(user.WorkspaceIdOf()).Select(ToObject).ToList()));

    public static async Task<IResult> Get(string modelId, ClaimsPrincipal user, InferenceService inference, CancellationToken ct) =>
        OpenAiJson.Result(ToObject(await inference.ResolveAsync(modelId, user.WorkspaceIdOf(), "model", ct)));

    public static async Task<IResult> Delete(string modelId, ClaimsPrincipal user, ModelRegistry registry, DeploymentService deployments, CancellationToken ct)
    {
        var workspaceId = user.WorkspaceIdOf();
        if (await deployments.RemoveAsync(modelId, workspaceId, ct))
        {
            return OpenAiJson.Result(new ModelDeleted(modelId, "model", true));
        }

        if (registry.Find(modelId, workspaceId) is not null)
        {
            throw new ApiException(StatusCodes.Status403Forbidden, "model_not_deletable",
                $"'{modelId}' is a configured model; only a workspace's own fine-tunes can be deleted.", "model");
        }

        throw InferenceErrors.ModelNotFound(modelId, "model");
    }

    private static ModelObject ToObject(ServedModel model) => new(model.Id, "model", model.Created.ToUnixTimeSeconds(), model.OwnedBy);
}

public sealed record ModelObject(string Id, string Object, long Created, string OwnedBy);

public sealed record ModelList(string Object, IReadOnlyList<ModelObject> Data);

public sealed record ModelDeleted(string Id, string Object, bool Deleted);
