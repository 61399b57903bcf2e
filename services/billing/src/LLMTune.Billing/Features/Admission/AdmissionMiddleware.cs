using System.Globalization;
using System.Security.Claims;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// Runs admission for every authenticated <c>/v1</c> request in the gateway process, after authentication and before
/// the endpoint or the proxy: in one process it wraps the modules' endpoints, in split mode what YARP forwards.
/// Reading your own billing and usage is never limited; <c>GET /v1/billing</c> gets this month's counts as claims (they
/// travel with the request to billing, which does not read admission's counters). The one place the rate-limit headers of an admitted request are
/// written (refusals carry theirs on the <see cref="LLMTune.Platform.Errors.ApiException"/>), and the one place an
/// admitted request gives back what it holds, once its response has ended (streams included, also when cut short).
/// </summary>
public sealed class AdmissionMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext http, RequestAdmission admission, TokenEstimator estimator, RequestWindows windows)
    {
        var path = http.Request.Path;
        if (!path.StartsWithSegments("/v1") || path.StartsWithSegments("/v1/usage")
            || http.User.Identity?.IsAuthenticated != true || http.User.FindFirst(WorkspaceClaims.WorkspaceId) is null)
        {
            await next(http);
            return;
        }

        if (path.StartsWithSegments("/v1/billing"))
        {
            var (requests, fineTunes) = await windows.MonthAsync(http.User.WorkspaceIdOf(), http.RequestAborted);
            ((ClaimsIdentity)http.User.Identity).AddClaims([
                new Claim(WorkspaceClaims.MonthRequests, requests.ToString(CultureInfo.InvariantCulture)),
                new Claim(WorkspaceClaims.MonthFineTunes, fineTunes.ToString(CultureInfo.InvariantCulture))]);
            await next(http);
            return;
        }

        var createsFineTune = HttpMethods.IsPost(http.Request.Method) && path.Value?.TrimEnd('/') == "/v1/fine-tune";
        var worstCase = await estimator.WorstCaseAsync(http);
        var admitted = await admission.AdmitAsync(
            new AdmissionRequest(http.User.WorkspaceIdOf(), http.User.KeyIdOf(), http.User.UsageIdOf(), createsFineTune, worstCase), http.RequestAborted);
        if (createsFineTune && http.User.Identity is ClaimsIdentity identity)
        {
            // The plan's queue travels with the request (forwarded as an internal header in split mode) and is stamped
            // on the job, so the trainer never reads billing's data.
            identity.AddClaim(new Claim(WorkspaceClaims.FineTunePriority,
                admitted.PriorityFineTunes ? WorkspaceClaims.PriorityQueue : WorkspaceClaims.StandardQueue));
        }

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
            await admission.CompleteAsync(admitted, http.User.UsageIdOf(), succeeded);
        }
    }
}
