using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LLMTune.Contracts;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.NativeInference;
using LLMTune.Inference.Features.OpenAiCompatible;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Outbox;
using MassTransit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference.Features.BatchItems;

/// <summary>The model is at capacity: the item is retried later (the consumer's retry policy), not failed.</summary>
public sealed class BatchModelBusyException(string message) : Exception(message);

/// <summary>
/// Runs one batch item through the same path as a synchronous request (<see cref="InferenceService"/> and
/// <see cref="UsageMeter"/>, so it is metered once with its batch id) and publishes its <see cref="BatchItemCompleted"/>.
/// Repeats of an item that already ran republish the stored outcome without running it again.
/// </summary>
public sealed class RunBatchItemConsumer(
    InferenceService inference,
    UsageMeter meter,
    BatchItemRuns runs,
    BatchSlots slots,
    BatchCancellations cancellations,
    EventOutbox outbox,
    IOptions<InferenceOptions> options,
    TimeProvider time,
    ILogger<RunBatchItemConsumer> logger) : IConsumer<RunBatchItem>
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task Consume(ConsumeContext<RunBatchItem> context)
    {
        var item = context.Message;
        var ct = context.CancellationToken;
        var (claimed, finished) = await runs.ClaimAsync(item.ItemKey, options.Value.BatchItemLease, ct);
        if (finished?.OutcomeJson is { } stored)
        {
            await outbox.PublishAsync(JsonSerializer.Deserialize<BatchItemCompleted>(stored, Json)!, ct);
            return;
        }

        if (!claimed)
        {
            return; // another replica is running it and will publish the outcome
        }

        BatchItemCompleted outcome;
        using (var tracked = cancellations.Track(item.BatchId, item.ItemKey, ct))
        {
            try
            {
                outcome = await RunAsync(item, tracked.Token);
            }
            catch (OperationCanceledException) when (tracked.BatchCancelled && !ct.IsCancellationRequested)
            {
                // The batch was cancelled mid-generation: the item is over (what it produced is metered); the batch
                // service has already recorded it as cancelled and ignores this outcome.
                outcome = Cancelled(item);
            }
            catch (Exception e) when (e is BatchModelBusyException or OperationCanceledException)
            {
                await runs.ReleaseAsync(item.ItemKey, CancellationToken.None);
                throw;
            }
        }

        await runs.CompleteAsync(item.ItemKey, JsonSerializer.Serialize(outcome, Json), ct);
        await outbox.PublishAsync(outcome, ct);
    }

    private async Task<BatchItemCompleted> RunAsync(RunBatchItem item, CancellationToken ct)
    {
        var caller = new InferenceCaller(item.WorkspaceId, item.KeyId, item.ItemKey, item.ItemKey, item.BatchId);
        var startedAt = Stopwatch.GetTimestamp();
        try
        {
            ct.ThrowIfCancellationRequested();
            var openAi = item.OpenAiUrl is { } url ? OpenAiBatchCall.For(url, Encoding.UTF8.GetBytes(item.OpenAiBody ?? ""), time) : null;
            var model = await inference.ResolveAsync(openAi is null ? item.ModelId : openAi.Model, item.WorkspaceId, openAi is null ? "modelId" : "model", ct);
            var input = openAi?.Input() ?? new InferenceInput(
                new GenerationRequest
                {
                    Prompt = item.Prompt,
                    MaxTokens = item.MaxTokens,
                    Temperature = item.Temperature ?? NativeInferenceEndpoints.DefaultTemperature,
                    TopP = item.TopP ?? 1f,
                },
                ParameterNames.Native,
                PromptAsUserTurn: true);
            var slot = await slots.EnterAsync(model, ct);
            InferenceOutcome result;
            long latencyMs;
            try
            {
                var call = await inference.StartAsync(model, input, stream: false, caller, ct);
                await using var session = meter.Begin(caller, call, startedAt, streamed: false);
                try
                {
                    result = await call.CompleteAsync(ct);
                }
                catch (Exception e) when (e is not ApiException && e is not OperationCanceledException && InferenceErrors.MidCall(e) is { } failure)
                {
                    throw failure;
                }

                latencyMs = session.ElapsedMs;

                // The engine freed the sequence before it published the result: the next item decodes while this one
                // is metered (the session's dispose) and reported. Any other end waits for the engine to stop the call.
                slot?.Dispose();
            }
            finally
            {
                slot?.Dispose();
            }

            var body = openAi is null ? null : JsonSerializer.Serialize(openAi.Format.Response(result, latencyMs), openAi.Format.Json);
            return Completed(item, result.Model, result.Text, result.PromptTokens, result.CompletionTokens, latencyMs, result.FinishReason, null, body);
        }
        catch (ApiException e) when (e.Code == "model_busy")
        {
            throw new BatchModelBusyException(e.Message);
        }
        catch (ApiException e) when (!ct.IsCancellationRequested)
        {
            // One item's failure (context too long, upstream down after retries) fails that item, not the batch.
            logger.LogInformation("Batch {BatchId} item {ItemKey} failed: {Code}", item.BatchId, item.ItemKey, e.Code);
            return Completed(item, item.ModelId, "", 0, 0, (long)Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds, InferenceOutcome.Error, e, null);
        }
    }

    private BatchItemCompleted Cancelled(RunBatchItem item) =>
        Completed(item, item.ModelId, "", 0, 0, 0, "cancelled",
            new ApiException(StatusCodes.Status409Conflict, "batch_cancelled", "The batch was cancelled while this item ran."), null);

    private BatchItemCompleted Completed(
        RunBatchItem item, string model, string text, int promptTokens, int completionTokens, long latencyMs, string finishReason, ApiException? error,
        string? responseBody) =>
        new(item.WorkspaceId, item.CorrelationId, time.GetUtcNow(), item.BatchId, item.ItemKey, model, text, promptTokens, completionTokens,
            latencyMs, finishReason, error?.Status, error?.Code, error?.Message, error?.Param, responseBody);
}

public sealed class RunBatchItemConsumerDefinition : ConsumerDefinition<RunBatchItemConsumer>
{
    public RunBatchItemConsumerDefinition(IOptions<InferenceOptions> options)
    {
        // Items taken at once; BatchSlots bounds each local model's share, so synchronous requests keep free slots.
        ConcurrentMessageLimit = options.Value.BatchConcurrency;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<RunBatchItemConsumer> consumerConfigurator,
        IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            // A busy model: try again later. Other failures (the store briefly unreachable) a few times; whatever is
            // left is re-requested by the batch service when the item's result does not come.
            r.Ignore<OperationCanceledException>();
            r.Exponential(8, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(250));
        });
}

/// <summary>Answers the batch service's <see cref="CheckModelAccess"/> from this service's registry (deployed fine-tunes included).</summary>
public sealed class CheckModelAccessConsumer(InferenceService inference) : IConsumer<CheckModelAccess>
{
    public async Task Consume(ConsumeContext<CheckModelAccess> context)
    {
        var request = context.Message;
        bool exists;
        try
        {
            _ = await inference.ResolveAsync(request.ModelId, request.WorkspaceId, "modelId", context.CancellationToken);
            exists = true;
        }
        catch (ApiException e) when (e.Status == StatusCodes.Status404NotFound || e.Status == StatusCodes.Status400BadRequest)
        {
            exists = false;
        }

        await context.RespondAsync(new ModelAccessChecked(request.WorkspaceId, request.ModelId, exists));
    }
}
