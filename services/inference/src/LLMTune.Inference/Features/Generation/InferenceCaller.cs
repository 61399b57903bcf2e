using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// Who asked (for access and metering), the request id upstreams and logs carry (the client's <c>x-request-id</c> when
/// it sent one) and the server's <c>UsageId</c> its usage is charged under (unique per request; a batch item's key);
/// <c>BatchId</c> when the call is a batch item, so its usage names the batch.
/// </summary>
public sealed record InferenceCaller(string WorkspaceId, string KeyId, string RequestId, string UsageId, string? BatchId = null)
{
    public static InferenceCaller From(HttpContext http) => new(http.User.WorkspaceIdOf(), http.User.KeyIdOf(), http.TraceIdentifier, http.User.UsageIdOf());
}
