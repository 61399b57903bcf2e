using System.Security.Claims;
using LLMTune.Batch.Features.Batches;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LLMTune.Batch.Features.OpenAiBatches;

/// <summary>OpenAI's Batch API (<c>/v1/batches</c>, snake_case) and the batches' output and error files.</summary>
public static class OpenAiBatchEndpoints
{
    public static void MapOpenAiBatchEndpoints(this IEndpointRouteBuilder app)
    {
        var batches = app.MapGroup("/v1/batches").WithTags("Batch");

        batches.MapPost("", async (CreateOpenAiBatchRequest request, ClaimsPrincipal user, OpenAiBatchSubmission submission, CancellationToken ct) =>
        {
            var batch = await submission.CreateAsync(user.WorkspaceIdOf(), user.KeyIdOf(), request, ct);
            return Results.Ok(OpenAiBatchView.From(batch, 0, 0));
        });

        batches.MapGet("", async (int? limit, string? after, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
        {
            var take = limit ?? 20;
            if (take is < 1 or > 100)
            {
                throw ApiException.Invalid("limit", "limit must be between 1 and 100.");
            }

            var workspaceId = user.WorkspaceIdOf();
            InferenceBatch? from = null;
            if (after is not null && (from = await store.GetAsync(workspaceId, after, ct)) is not { Format: BatchFormat.OpenAi })
            {
                throw ApiException.Invalid("after", $"after must be the id of one of this workspace's batches; '{after}' is not.");
            }

            var (page, more) = await store.ListOpenAiAsync(workspaceId, from, take, ct);
            var views = page.Select(b => OpenAiBatchView.From(b, b.Succeeded, b.Failed)).ToList();
            return Results.Ok(new OpenAiBatchList("list", views, views.FirstOrDefault()?.Id, views.LastOrDefault()?.Id, more));
        });

        batches.MapGet("/{batchId}", async (string batchId, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
            Results.Ok(await ViewAsync(store, await FindAsync(store, user, batchId, ct), ct)));

        batches.MapPost("/{batchId}/cancel", async (string batchId, ClaimsPrincipal user, BatchStore store, BatchProgress progress, CancellationToken ct) =>
        {
            var batch = await FindAsync(store, user, batchId, ct);
            if (batch.Status != BatchStatus.Cancelled && await progress.CancelAsync(batch.Id, ct) is null
                && (await store.GetAsync(batch.Id, ct))?.Status != BatchStatus.Cancelled)
            {
                throw ApiException.Conflict("batch_finished", $"Batch {batchId} has already finished.");
            }

            return Results.Ok(await ViewAsync(store, (await store.GetAsync(batch.Id, ct))!, ct));
        });

        var files = app.MapGroup("/v1/files").WithTags("Files");
        files.MapGet("/file_batch_{rest}", async (string rest, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
        {
            var (batch, errors, content) = await FileAsync(store, user, "file_batch_" + rest, ct);
            return Results.Ok(FileObject.Of("file_batch_" + rest, content.Length,
                new DateTimeOffset(DateTime.SpecifyKind(batch.CompletedAt ?? batch.CreatedAt, DateTimeKind.Utc)),
                $"{batch.Id}_{(errors ? "errors" : "output")}.jsonl", "batch_output"));
        });

        files.MapGet("/file_batch_{rest}/content", async (string rest, ClaimsPrincipal user, BatchStore store, CancellationToken ct) =>
        {
            var (batch, errors, content) = await FileAsync(store, user, "file_batch_" + rest, ct);
            return Results.File(content, "application/jsonl", $"{batch.Id}_{(errors ? "errors" : "output")}.jsonl");
        });
    }

    private static async Task<InferenceBatch> FindAsync(BatchStore store, ClaimsPrincipal user, string batchId, CancellationToken ct) =>
        await store.GetAsync(user.WorkspaceIdOf(), batchId, ct) is { Format: BatchFormat.OpenAi } batch ? batch : throw BatchEndpoints.NotFound(batchId);

    /// <summary>The batch with counts taken from its items (results recorded a moment ago included).</summary>
    private static async Task<OpenAiBatchView> ViewAsync(BatchStore store, InferenceBatch batch, CancellationToken ct)
    {
        var (succeeded, failed, _) = await store.CountAsync(batch.Id, ct);
        return OpenAiBatchView.From(batch, succeeded, failed);
    }

    /// <summary>An output or error file of a finished batch of this workspace; anything else is not found.</summary>
    private static async Task<(InferenceBatch Batch, bool Errors, byte[] Content)> FileAsync(BatchStore store, ClaimsPrincipal user, string fileId, CancellationToken ct)
    {
        var notFound = ApiException.NotFound("file_not_found", $"No file '{fileId}' in this workspace.");
        if (OpenAiBatchFiles.Parse(fileId) is not { } file
            || await store.GetAsync(user.WorkspaceIdOf(), file.BatchId, ct) is not { Format: BatchFormat.OpenAi } batch
            || !InferenceBatch.IsFinal(batch.Status))
        {
            throw notFound;
        }

        var view = await ViewAsync(store, batch, ct);
        if ((file.Errors ? view.ErrorFileId : view.OutputFileId) != fileId)
        {
            throw notFound;
        }

        return (batch, file.Errors, OpenAiBatchFiles.Content(await store.ItemsOfAsync(batch.Id, ct), file.Errors));
    }
}
