using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// Runs admission for every authenticated <c>/v1</c> request in the gateway process, after authentication and before
/// the endpoint or the proxy: in one process it wraps the modules' endpoints, in split mode what YARP forwards.
/// Reading your own billing and usage is never limited. The one place the rate-limit headers of an admitted request are
/// written (refusals carry theirs on the <see cref="LLMTune.Platform.Errors.ApiException"/>).
/// </summary>
public sealed class AdmissionMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext http, RequestAdmission admission)
    {
        var path = http.Request.Path;
        if (!path.StartsWithSegments("/v1") || path.StartsWithSegments("/v1/billing") || path.StartsWithSegments("/v1/usage")
            || http.User.Identity?.IsAuthenticated != true || http.User.FindFirst(WorkspaceClaims.WorkspaceId) is null)
        {
            await next(http);
            return;
        }

        var createsFineTune = HttpMethods.IsPost(http.Request.Method) && path.Value?.TrimEnd('/') == "/v1/fine-tune";
        var admitted = await admission.AdmitAsync(http.User.WorkspaceIdOf(), http.User.KeyIdOf(), createsFineTune, http.RequestAborted);
        http.Response.OnStarting(() =>
        {
            foreach (var (name, value) in RateLimitHeaders.For(admitted.Limits, admitted.At))
            {
                http.Response.Headers[name] = value;
            }

            return Task.CompletedTask;
        });

        var succeeded = false;
        try
        {
            await next(http);
            succeeded = http.Response.StatusCode is >= 200 and < 300;
        }
        finally
        {
            if (admitted.FineTuneReservation is { } reservation && !succeeded)
            {
                // No job was created: it does not count against the month's fine-tunes.
                await admission.ReleaseFineTuneAsync(reservation);
            }
        }
    }
}
