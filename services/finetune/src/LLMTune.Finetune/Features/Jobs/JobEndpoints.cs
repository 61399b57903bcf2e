using System.Security.Claims;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Errors;
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
            var priority = user.FindFirstValue(WorkspaceClaims.FineTunePriority) == WorkspaceClaims.PriorityQueue;
            var job = await service.CreateAsync(user.WorkspaceIdOf(), request, ct, priority);
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

        jobs.MapGet("/{jobId}/checkpoints", async (string jobId, int? limit, string? cursor, ClaimsPrincipal user, JobStore store, CancellationToken ct) =>
        {
            var page = PageRequest.From(limit, cursor);
            var job = await store.GetAsync(user.WorkspaceIdOf(), jobId, ct) ?? throw JobService.JobNotFound(jobId);
            var checkpoints = await store.ListCheckpointsAsync(jobId, page, ct);
            return Results.Ok(checkpoints.Select(c => CheckpointView.From(c, job)));
        });

        jobs.MapGet("/{jobId}/checkpoints/{checkpointId}/content", async (string jobId, string checkpointId, ClaimsPrincipal user, JobStore store, IArtifactStore artifacts, CancellationToken ct) =>
        {
            _ = await store.GetAsync(user.WorkspaceIdOf(), jobId, ct) ?? throw JobService.JobNotFound(jobId);
            var checkpoint = await store.GetCheckpointAsync(jobId, checkpointId, ct) ?? throw CheckpointNotFound(checkpointId);
            var content = await artifacts.OpenReadAsync(checkpoint.ArtifactKey, ct) ?? throw CheckpointNotFound(checkpointId);
            return Results.Stream(content, "application/octet-stream", $"{jobId}-step-{checkpoint.Step}-{(checkpoint.Kind == "lora" ? "adapter" : "model")}.gguf");
        });

        jobs.MapPost("/{jobId}/cancel", async (string jobId, ClaimsPrincipal user, JobService service, CancellationToken ct) =>
            Results.Ok(JobView.From(await service.CancelAsync(user.WorkspaceIdOf(), jobId, ct))));
    }

    private static ApiException CheckpointNotFound(string checkpointId) =>
        ApiException.NotFound("checkpoint_not_found", $"No checkpoint '{checkpointId}' for this job.");
}
