using System.Security.Claims;
using System.Text;
using System.Text.Json;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using HttpJsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace LLMTune.Batch.Features.Batches;

public static class BatchEndpoints
{
    public static void MapBatchEndpoints(this IEndpointRouteBuilder app)
    {
        var batches = app.MapGroup("/v1/batch").WithTags("Batch");

        batches.MapPost("/inference", async (CreateBatchRequest request, ClaimsPrincipal user, BatchSubmission submission, CancellationToken ct) =>
        {
            var accepted = await submission.CreateAsync(user.WorkspaceIdOf(), user.KeyIdOf(), request, ct);
            return Results.Accepted($"/v1/batch/{accepted.BatchId}", accepted);
        });

        batches.MapGet("", async (int? limit, string? cursor, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
        {
            var page = await store.ListAsync(user.WorkspaceIdOf(), PageRequest.From(limit, cursor), ct);
            return Results.Ok(page.Select(BatchView.Summary));
        });

        batches.MapGet("/{batchId}", async (string batchId, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
        {
            var batch = await store.GetAsync(user.WorkspaceIdOf(), batchId, ct) ?? throw NotFound(batchId);
            return Results.Ok(BatchView.Detail(batch, await store.ItemsOfAsync(batch.Id, ct)));
        });

        batches.MapPost("/{batchId}/cancel", async (string batchId, ClaimsPrincipal user, BatchStore store, BatchProgress progress, CancellationToken ct) =>
        {
            var batch = await store.GetAsync(user.WorkspaceIdOf(), batchId, ct) ?? throw NotFound(batchId);
            if (batch.Status != BatchStatus.Cancelled && await progress.CancelAsync(batch.Id, ct) is null)
            {
                var finished = await store.GetAsync(batch.Id, ct);
                if (finished?.Status != BatchStatus.Cancelled)
                {
                    throw ApiException.Conflict("batch_finished", $"Batch {batchId} has already finished ({BatchView.StatusName(finished?.Status ?? batch.Status)}).");
                }
            }

            return Results.Ok(BatchView.Detail((await store.GetAsync(batch.Id, ct))!, await store.ItemsOfAsync(batch.Id, ct)));
        });

        // One JSON object per finished item and line, in request order.
        batches.MapGet("/{batchId}/results", async (string batchId, ClaimsPrincipal user, BatchStore store, IOptions<HttpJsonOptions> json, CancellationToken ct) =>
        {
            var batch = await store.GetAsync(user.WorkspaceIdOf(), batchId, ct) ?? throw NotFound(batchId);
            var lines = new StringBuilder();
            foreach (var item in (await store.ItemsOfAsync(batch.Id, ct)).Where(BatchView.IsFinished))
            {
                lines.Append(JsonSerializer.Serialize(BatchView.Result(item), json.Value.SerializerOptions)).Append('\n');
            }

            return Results.Text(lines.ToString(), "application/jsonl", Encoding.UTF8);
        });
    }

    public static ApiException NotFound(string batchId) =>
        ApiException.NotFound("batch_not_found", $"Batch '{batchId}' does not exist or you do not have access to it.", "batchId");
}
