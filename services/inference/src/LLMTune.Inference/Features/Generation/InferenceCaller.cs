using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// Who asked (for access and metering) and the request id upstreams and usage records carry; <c>BatchId</c> when the
/// call is a batch item, so its usage names the batch.
/// </summary>
public sealed record InferenceCaller(string WorkspaceId, string KeyId, string RequestId, string? BatchId = null)
{
    public static InferenceCaller From(HttpContext http) => new(http.User.WorkspaceIdOf(), http.User.KeyIdOf(), http.TraceIdentifier);
}
