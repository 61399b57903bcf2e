using System.Text.Json;
using LLMTune.Batch.Features.Batches;
using LLMTune.Contracts;
using LLMTune.Platform.Errors;
using MassTransit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace LLMTune.Batch.Features.OpenAiBatches;

/// <summary>
/// <c>POST /v1/batches</c>: reads the uploaded input file from its owner (<c>ReadFile</c> to the finetune service, which
/// keeps uploads), checks every line, and stores the batch and its items for the same pipeline as a native batch.
/// </summary>
public sealed class OpenAiBatchSubmission(
    BatchStore store,
    BatchDispatcher dispatcher,
    BatchSubmission native,
    IRequestClient<ReadFile> fileReader,
    IBusControl bus,
    IOptions<BatchOptions> options)
{
    public const string CompletionWindow = "24h";
    public const string ChatCompletions = "/v1/chat/completions";
    public const string Completions = "/v1/completions";
    private const string InputParam = "input_file_id";

    public async Task<InferenceBatch> CreateAsync(string workspaceId, string keyId, CreateOpenAiBatchRequest request, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.InputFileId))
        {
            throw ApiException.Invalid(InputParam, "input_file_id is required.");
        }

        if (request.Endpoint is not (ChatCompletions or Completions))
        {
            throw ApiException.Invalid("endpoint", $"endpoint must be {ChatCompletions} or {Completions}.");
        }

        if (request.CompletionWindow != CompletionWindow)
        {
            throw ApiException.Invalid("completion_window", $"completion_window must be \"{CompletionWindow}\".");
        }

        var metadata = Metadata(request.Metadata);
        var content = await ReadInputAsync(workspaceId, request.InputFileId, ct);
        var lines = Parse(content, request.Endpoint);
        var model = lines[0].Model;
        await native.EnsureModelAsync(workspaceId, model, InputParam, ct);

        var now = store.Now;
        var batch = new InferenceBatch
        {
            Id = Platform.Http.RequestIdMiddleware.NewId("batch"),
            WorkspaceId = workspaceId,
            KeyId = keyId,
            ModelId = model,
            Format = BatchFormat.OpenAi,
            Endpoint = request.Endpoint,
            InputFileId = request.InputFileId,
            CompletionWindow = CompletionWindow,
            MetadataJson = metadata,
            Status = BatchStatus.Queued,
            Total = lines.Count,
            CreatedAt = now,
        };
        var items = lines.Select((line, index) =>
        {
            var item = BatchItem.PendingOf(batch, index, line.CustomId);
            item.OpenAiUrl = request.Endpoint;
            item.OpenAiBody = line.Body;
            return item;
        }).ToList();

        await store.InsertAsync(batch, items, ct);
        dispatcher.Wake();
        return batch;
    }

    /// <summary>OpenAI's metadata: at most 16 string values, keys up to 64 characters, values up to 512.</summary>
    private static string? Metadata(JsonElement? metadata)
    {
        if (metadata is not { ValueKind: not JsonValueKind.Null } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object || value.EnumerateObject().Count() > 16
            || value.EnumerateObject().Any(p => p.Name.Length > 64 || p.Value.ValueKind != JsonValueKind.String || p.Value.GetString()!.Length > 512))
        {
            throw ApiException.Invalid("metadata", "metadata must be an object of at most 16 string values (keys up to 64 characters, values up to 512).");
        }

        return value.GetRawText();
    }

    /// <summary>The file's content from its owner; an unknown file or another workspace's is 404.</summary>
    private async Task<string> ReadInputAsync(string workspaceId, string fileId, CancellationToken ct)
    {
        if (bus.CheckHealth().Status != BusHealthStatus.Healthy)
        {
            throw Unavailable();
        }

        var limits = options.Value;
        FileRead file;
        try
        {
            file = (await fileReader.GetResponse<FileRead>(new ReadFile(workspaceId, fileId, "batch", limits.MaxFileBytes), ct,
                RequestTimeout.After(ms: (int)limits.FileReadTimeout.TotalMilliseconds))).Message;
        }
        catch (RequestTimeoutException)
        {
            throw Unavailable();
        }

        return file switch
        {
            { Found: false } => throw ApiException.NotFound("file_not_found", $"No file '{fileId}' in this workspace.", InputParam),
            { Problem: "wrong_purpose" } => throw ApiException.Invalid(InputParam, $"File {fileId} was uploaded with purpose \"{file.Purpose}\"; a batch's input needs purpose \"batch\"."),
            { Problem: "file_too_large" } => throw new ApiException(StatusCodes.Status400BadRequest, "file_too_large",
                $"The input file has {file.Bytes} bytes; a batch's input may have at most {limits.MaxFileBytes} (Batch:MaxFileBytes).", InputParam),
            { Problem: { } problem } => throw ApiException.Invalid(InputParam, $"The input file cannot be read as UTF-8 JSONL ({problem})."),
            _ => file.Content ?? "",
        };
    }

    private static ApiException Unavailable() =>
        new(StatusCodes.Status503ServiceUnavailable, "service_unavailable", "The file service did not answer in time; no batch was created. Retry shortly.")
        { RetryAfter = TimeSpan.FromSeconds(5) };

    private sealed record InputLine(string CustomId, string Model, string Body);

    /// <summary>
    /// Every line as OpenAI's batch input: <c>{custom_id, method: "POST", url, body}</c>, custom ids unique, the url the
    /// batch's endpoint, one model for the batch. A bad line refuses the whole file, naming the line (OpenAI's
    /// validation, done before anything runs); a body's parameters are checked when its item runs, like a request's.
    /// </summary>
    private List<InputLine> Parse(string content, string endpoint)
    {
        var max = options.Value.MaxFileRequests;
        var lines = new List<InputLine>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in content.Split('\n'))
        {
            number++;
            var text = raw.TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            if (lines.Count == max)
            {
                throw new ApiException(StatusCodes.Status400BadRequest, "too_many_requests_in_batch",
                    $"The input file has more than {max} requests (Batch:MaxFileRequests).", InputParam);
            }

            JsonElement line;
            try
            {
                using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
                line = document.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw Bad(number, $"is not valid JSON ({e.Message})");
            }

            if (line.ValueKind != JsonValueKind.Object)
            {
                throw Bad(number, "must be a JSON object with custom_id, method, url and body");
            }

            var customId = Text(line, "custom_id") ?? throw Bad(number, "needs custom_id, a non-empty string");
            if (!ids.Add(customId))
            {
                throw Bad(number, $"reuses custom_id '{customId}' of an earlier line", "duplicate_custom_id");
            }

            if (Text(line, "method") != "POST")
            {
                throw Bad(number, "needs method \"POST\"");
            }

            if (Text(line, "url") != endpoint)
            {
                throw Bad(number, $"has url '{Text(line, "url")}'; every line of this batch must call its endpoint {endpoint}", "invalid_url");
            }

            if (!line.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
            {
                throw Bad(number, "needs body, the request as a JSON object");
            }

            var model = Text(body, "model") ?? throw Bad(number, "needs body.model, a non-empty string");
            if (lines.Count > 0 && model != lines[0].Model)
            {
                throw Bad(number, $"uses model '{model}'; every line of a batch must use one model ('{lines[0].Model}')", "mixed_models");
            }

            if (body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
            {
                throw Bad(number, "asks for stream: true; batch requests are not streamed");
            }

            lines.Add(new InputLine(customId, model, body.GetRawText()));
        }

        return lines.Count > 0 ? lines : throw ApiException.Invalid(InputParam, "The input file holds no requests.");
    }

    private static string? Text(JsonElement obj, string name)
    {
        try
        {
            return obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text ? text : null;
        }
        catch (InvalidOperationException)
        {
            return null; // not valid Unicode (a lone surrogate)
        }
    }

    private static ApiException Bad(int line, string problem, string code = "invalid_input_file") =>
        new(StatusCodes.Status400BadRequest, code, $"Line {line} of the input file {problem}.", InputParam);
}
