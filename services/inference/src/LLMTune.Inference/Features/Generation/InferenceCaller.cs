using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>Who asked (for access and metering) and the request id upstreams and usage records carry.</summary>
public sealed record InferenceCaller(string WorkspaceId, string KeyId, string RequestId)
{
    public static InferenceCaller From(HttpContext http) => new(http.User.WorkspaceIdOf(), http.User.KeyIdOf(), http.TraceIdentifier);
}
