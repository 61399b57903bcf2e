using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using MassTransit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Batch.Features.Batches;

/// <summary>Validates a batch, checks its model with the inference service, stores it and its items, and announces it.</summary>
public sealed class BatchSubmission(
    BatchStore store,
    BatchDispatcher dispatcher,
    IRequestClient<CheckModelAccess> modelCheck,
    IBusControl bus,
    IOptions<BatchOptions> options,
    IOptions<OutboundOptions> outbound,
    ILogger<BatchSubmission> logger)
{
    public async Task<BatchAccepted> CreateAsync(string workspaceId, string keyId, CreateBatchRequest request, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.ModelId))
        {
            throw ApiException.Invalid("modelId", "modelId is required.");
        }

        var max = options.Value.MaxRequests;
        if (request.Requests is not { Count: > 0 } requests)
        {
            throw ApiException.Invalid("requests", $"requests must hold between 1 and {max} requests.");
        }

        if (requests.Count > max)
        {
            throw ApiException.Invalid("requests", $"A batch holds at most {max} requests; this one has {requests.Count}.", "too_many_requests_in_batch");
        }

        if (request.WebhookUrl is { } webhook)
        {
            if (!(Uri.TryCreate(webhook, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)))
            {
                throw ApiException.Invalid("webhookUrl", "webhookUrl must be an absolute https URL.");
            }

            // The webhooks service checks the address it connects to; plain http is turned away here already.
            if (uri.Scheme == Uri.UriSchemeHttp && !outbound.Value.AllowList().Lists(uri.IdnHost))
            {
                throw ApiException.Invalid("webhookUrl", $"webhookUrl must use https (plain http only for hosts on Outbound:AllowedHosts; '{uri.IdnHost}' is not).");
            }
        }

        var accepted = new List<(int Position, BatchRequestItem Item)>();
        var rejected = new List<RejectedRequest>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var position = 0; position < requests.Count; position++)
        {
            var item = requests[position];
            var problem = Validate(item, position);
            if (problem is null && !seen.Add(item!.Id!))
            {
                problem = Reject($"requests[{position}].id", $"The id '{item.Id}' is used by an earlier request of this batch.", "duplicate_id");
            }

            if (problem is null)
            {
                accepted.Add((position, item!));
            }
            else
            {
                rejected.Add(new RejectedRequest(item?.Id, problem));
            }
        }

        if (accepted.Count == 0)
        {
            throw ApiException.Invalid("requests", $"None of the {requests.Count} requests is valid; see each request's errors: {rejected[0].Error.Message}", "no_valid_requests");
        }

        await EnsureModelAsync(workspaceId, request.ModelId, "modelId", ct);

        var now = store.Now;
        var batch = new InferenceBatch
        {
            Id = RequestIdMiddleware.NewId("batch"),
            WorkspaceId = workspaceId,
            KeyId = keyId,
            ModelId = request.ModelId,
            WebhookUrl = request.WebhookUrl,
            Status = BatchStatus.Queued,
            Total = accepted.Count,
            CreatedAt = now,
        };
        var items = accepted.Select((a, index) =>
        {
            var item = BatchItem.PendingOf(batch, index, a.Item.Id!);
            item.Prompt = a.Item.Prompt!;
            item.Temperature = a.Item.Temperature;
            item.MaxTokens = a.Item.MaxTokens;
            item.TopP = a.Item.TopP;
            item.MetadataJson = a.Item.Metadata is { ValueKind: JsonValueKind.Object } metadata ? metadata.GetRawText() : null;
            return item;
        }).ToList();

        await store.InsertAsync(batch, items, ct);
        dispatcher.Wake();
        return new BatchAccepted(batch.Id, BatchView.StatusName(batch.Status), new BatchSummary(requests.Count, accepted.Count), rejected);
    }

    /// <summary>The same rules as <c>POST /v1/models/{id}/inference</c>, per request; null when the request is valid.</summary>
    private static BatchItemError? Validate(BatchRequestItem? item, int position)
    {
        var at = $"requests[{position}]";
        if (item is null)
        {
            return Reject(at, "Each request must be an object with an id and a prompt.");
        }

        if (string.IsNullOrWhiteSpace(item.Id))
        {
            return Reject($"{at}.id", "id is required and must be a non-empty string.");
        }

        if (string.IsNullOrEmpty(item.Prompt))
        {
            return Reject($"{at}.prompt", "prompt is required and must be a non-empty string.");
        }

        if (item.Temperature is { } temperature && !(temperature is >= 0 and <= 2))
        {
            return Reject($"{at}.temperature", "temperature must be between 0 and 2.");
        }

        if (item.TopP is { } topP && !(topP is > 0 and <= 1))
        {
            return Reject($"{at}.topP", "topP must be greater than 0 and at most 1.");
        }

        if (item.MaxTokens is < 1)
        {
            return Reject($"{at}.maxTokens", "maxTokens must be at least 1.");
        }

        if (item.Metadata is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
        {
            return Reject($"{at}.metadata", "metadata must be a JSON object.");
        }

        return null;
    }

    private static BatchItemError Reject(string param, string message, string code = "invalid_parameter") =>
        new(message, ApiErrors.TypeFor(StatusCodes.Status400BadRequest), param, code);

    /// <summary>
    /// Asks the inference service (in this process or another) whether the workspace may use the model. With the broker
    /// away nobody can answer, and the batch is accepted unchecked rather than the request waiting on the broker: its
    /// items then fail one by one with <c>model_not_found</c> if the model does not exist.
    /// </summary>
    public async Task EnsureModelAsync(string workspaceId, string modelId, string param, CancellationToken ct)
    {
        if (bus.CheckHealth().Status != BusHealthStatus.Healthy)
        {
            logger.LogWarning("The bus is unavailable: batch for model {ModelId} accepted without checking the model", modelId);
            return;
        }

        Response<ModelAccessChecked> answer;
        try
        {
            answer = await modelCheck.GetResponse<ModelAccessChecked>(new CheckModelAccess(workspaceId, modelId), ct, RequestTimeout.After(ms: (int)options.Value.ModelCheckTimeout.TotalMilliseconds));
        }
        catch (RequestTimeoutException)
        {
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "inference_unavailable",
                "The inference service did not answer in time; no batch was created. Retry shortly.")
            { RetryAfter = TimeSpan.FromSeconds(5) };
        }

        if (!answer.Message.Exists)
        {
            throw ApiException.NotFound("model_not_found", $"The model '{modelId}' does not exist or you do not have access to it.", param);
        }
    }
}
