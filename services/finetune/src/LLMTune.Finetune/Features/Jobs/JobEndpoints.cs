using System.Security.Claims;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Finetune.Features.Jobs;

public static class JobEndpoints
{
    public static void MapJobEndpoints(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/v1/fine-tune").WithTags("Fine-tuning");

        jobs.MapPost("", async (CreateJobRequest request, ClaimsPrincipal user, JobService service, CancellationToken ct) =>
        {
            var job = await service.CreateAsync(user.WorkspaceIdOf(), request, ct);
            return Results.Created($"/v1/fine-tune/{job.Id}", JobView.From(job));
        });

        jobs.MapGet("", async (int? limit, string? cursor, ClaimsPrincipal user, JobStore store, CancellationToken ct) =>
        {
            var page = await store.ListAsync(user.WorkspaceIdOf(), PageRequest.From(limit, cursor), ct);
            return Results.Ok(page.Select(JobView.From));
        });

        jobs.MapGet("/{jobId}", async (string jobId, ClaimsPrincipal user, JobStore store, CancellationToken ct) =>
            Results.Ok(JobView.From(await store.GetAsync(user.WorkspaceIdOf(), jobId, ct) ?? throw JobService.JobNotFound(jobId))));

        jobs.MapGet("/{jobId}/events", async (string jobId, int? limit, string? cursor, ClaimsPrincipal user, JobStore store, CancellationToken ct) =>
        {
            var page = PageRequest.From(limit, cursor);
            _ = await store.GetAsync(user.WorkspaceIdOf(), jobId, ct) ?? throw JobService.JobNotFound(jobId);
            var events = await store.ListEventsAsync(jobId, page, ct);
            return Results.Ok(events.Select(JobEventView.From));
        });

        jobs.MapPost("/{jobId}/cancel", async (string jobId, ClaimsPrincipal user, JobService service, CancellationToken ct) =>
            Results.Ok(JobView.From(await service.CancelAsync(user.WorkspaceIdOf(), jobId, ct))));
    }
}
