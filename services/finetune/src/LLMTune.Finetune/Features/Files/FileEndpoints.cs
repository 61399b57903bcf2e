using System.Security.Claims;
using Amazon.Runtime;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Platform.Artifacts;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace LLMTune.Finetune.Features.Files;

public static class FileView
{
    public static FileObject From(DatasetFile f) =>
        FileObject.Of(f.Id, f.Bytes, new DateTimeOffset(DateTime.SpecifyKind(f.CreatedAt, DateTimeKind.Utc)), f.Filename, f.Purpose);
}

public sealed record FileDeletedView(string Id, string Object, bool Deleted);

/// <summary>The multipart upload as the OpenAPI document describes it: a <c>file</c> part and <c>purpose</c> (<c>fine-tune</c> or <c>batch</c>).</summary>
public sealed record FileUploadForm(IFormFile File, string Purpose);

/// <summary>
/// Uploads: multipart <c>file</c> + <c>purpose</c>, streamed into the artifact store. <c>fine-tune</c> files are
/// datasets; <c>batch</c> files are OpenAI batch inputs, which the batch service asks for with <c>ReadFile</c>.
/// </summary>
public static class FileEndpoints
{
    public const string FineTunePurpose = "fine-tune";
    public const string BatchPurpose = "batch";

    public static void MapFileEndpoints(this IEndpointRouteBuilder app)
    {
        var files = app.MapGroup("/v1/files").WithTags("Files");

        // The body is streamed by hand (no form binding), so the document is told its shape.
        files.MapPost("", UploadAsync).DisableAntiforgery().Accepts<FileUploadForm>("multipart/form-data");

        files.MapGet("", async (int? limit, string? cursor, ClaimsPrincipal user, FileStore store, CancellationToken ct) =>
        {
            var page = await store.ListAsync(user.WorkspaceIdOf(), PageRequest.From(limit, cursor), ct);
            return Results.Ok(page.Select(FileView.From));
        });

        files.MapGet("/{id}", async (string id, ClaimsPrincipal user, FileStore store, CancellationToken ct) =>
            await store.FindAsync(user.WorkspaceIdOf(), id, ct) is { } file ? Results.Ok(FileView.From(file)) : throw FileNotFound(id));

        files.MapGet("/{id}/content", async (string id, ClaimsPrincipal user, FileStore store, IArtifactStore artifacts, CancellationToken ct) =>
        {
            var file = await store.FindAsync(user.WorkspaceIdOf(), id, ct) ?? throw FileNotFound(id);
            var content = await artifacts.OpenReadAsync(ArtifactKeys.File(file.Id), ct) ?? throw FileNotFound(id);
            return Results.Stream(content, "application/octet-stream", file.Filename);
        });

        files.MapDelete("/{id}", async (string id, ClaimsPrincipal user, FileStore store, IArtifactStore artifacts, CancellationToken ct) =>
        {
            if (await store.FindAsync(user.WorkspaceIdOf(), id, ct) is not { } file)
            {
                throw FileNotFound(id);
            }

            // Jobs that already started keep their own snapshot of the data.
            await store.DeleteAsync(file.Id, ct);
            await artifacts.DeleteAsync(ArtifactKeys.File(file.Id), ct);
            return Results.Ok(new FileDeletedView(file.Id, "file", true));
        });
    }

    private static async Task<IResult> UploadAsync(HttpContext http, ClaimsPrincipal user, FileStore store, IArtifactStore artifacts,
        IOptions<FinetuneOptions> options, TimeProvider time, CancellationToken ct)
    {
        var limit = options.Value.MaxUploadBytes;
        // This endpoint has its own limit (datasets are bigger than API bodies); the file part is counted exactly below.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limit + 64 * 1024;
        }

        if (http.Request.ContentLength > limit + 64 * 1024)
        {
            throw TooLarge(limit);
        }

        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
        {
            throw ApiException.Invalid("file", "Send multipart/form-data with a \"file\" part and purpose=fine-tune or purpose=batch.", "invalid_request");
        }

        var fileId = RequestIdMiddleware.NewId("file");
        var key = ArtifactKeys.File(fileId);
        string? purpose = null;
        string? filename = null;
        long bytes = -1;
        var reader = new MultipartReader(boundary, http.Request.Body);
        try
        {
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition))
                {
                    continue;
                }

                var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value;
                if (name == "purpose")
                {
                    using var text = new StreamReader(section.Body);
                    purpose = (await text.ReadToEndAsync(ct)).Trim();
                }
                else if (name == "file" && bytes < 0)
                {
                    filename = Path.GetFileName(HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value ?? "");
                    bytes = await artifacts.SaveAsync(key, section.Body, limit, ct);
                }
            }
        }
        catch (ArtifactTooLargeException)
        {
            throw TooLarge(limit);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await artifacts.DeleteAsync(key, CancellationToken.None);
            throw TooLarge(limit);
        }
        catch (Exception e) when (e is IOException and not FileNotFoundException or InvalidDataException)
        {
            // InvalidDataException: the multipart reader's verdict on malformed part headers (bad or overlong lines).
            await artifacts.DeleteAsync(key, CancellationToken.None);
            throw ApiException.Invalid("file", $"The multipart body could not be read: {e.Message}", "invalid_request");
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            // The bucket is down or misconfigured: the operator's problem, reported as such (details in the log).
            http.RequestServices.GetRequiredService<ILogger<DatasetFile>>().LogError(e, "Storing upload {FileId} failed", fileId);
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "storage_unavailable", "File storage is unavailable; try again later.");
        }

        string? problem = null;
        string? param = null;
        if (bytes < 0)
        {
            (problem, param) = ("A \"file\" part is required.", "file");
        }
        else if (purpose is not (FineTunePurpose or BatchPurpose))
        {
            (problem, param) = ($"purpose must be \"{FineTunePurpose}\" or \"{BatchPurpose}\".", "purpose");
        }
        else if (bytes == 0)
        {
            (problem, param) = ("The file is empty.", "file");
        }

        if (problem is not null)
        {
            await artifacts.DeleteAsync(key, CancellationToken.None);
            throw ApiException.Invalid(param!, problem);
        }

        var file = new DatasetFile
        {
            Id = fileId,
            WorkspaceId = user.WorkspaceIdOf(),
            Filename = string.IsNullOrEmpty(filename) ? (purpose == BatchPurpose ? "batch.jsonl" : "dataset.jsonl") : filename,
            Purpose = purpose!,
            Bytes = bytes,
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        await store.InsertAsync(file, ct);
        // 200 as OpenAI's Files API answers (its SDKs accept nothing else), not this API's usual 201.
        return Results.Ok(FileView.From(file));
    }

    private static ApiException FileNotFound(string id) => ApiException.NotFound("file_not_found", $"No file '{id}' in this workspace.");

    private static ApiException TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, "file_too_large", $"The file is larger than the upload limit of {limit} bytes.", "file");
}
