using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Deployment;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// Finds the model a request names and starts the call on it: in-process on the engine, or upstream with fallbacks.
/// Every endpoint (native, playground, OpenAI-compatible) goes through here, so limits and errors are the same everywhere.
/// </summary>
public sealed class InferenceService(
    ModelRegistry registry,
    DeploymentService deployments,
    IOptions<InferenceOptions> options,
    ILogger<InferenceService> logger)
{
    /// <summary>The model if the workspace may use it (deployed fine-tunes load on first use); else 404 <c>model_not_found</c>.</summary>
    public async Task<ServedModel> ResolveAsync(string? modelId, string workspaceId, string param, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(modelId))
        {
            throw ApiException.Invalid(param, $"{param} is required.");
        }

        return registry.Find(modelId, workspaceId)
            ?? await deployments.TryRestoreAsync(modelId, workspaceId, cancellationToken).ConfigureAwait(false)
            ?? throw InferenceErrors.ModelNotFound(modelId, param);
    }

    /// <summary>The model's configured fallbacks that exist, in order.</summary>
    public IEnumerable<ServedModel> FallbacksOf(ServedModel model) =>
        model.Fallbacks.Select(registry.FindShared).OfType<ServedModel>();

    /// <summary>Whether a bare prompt should be sent as a user turn (instruct models) rather than continued as raw text.</summary>
    private static bool PrefersChat(ServedModel model) => model switch
    {
        LocalServedModel local => local.Model.Summary.HasChatTemplate,
        _ => true, // upstream servers in front of instruct models are the common case; chat works for both kinds
    };

    /// <summary>The request as this model takes it: a native prompt becomes a user turn on models that chat.</summary>
    private static InferenceInput For(ServedModel model, InferenceInput input) =>
        input.PromptAsUserTurn && input.Generation.Prompt is { } prompt && PrefersChat(model)
            ? input with { Generation = input.Generation with { Messages = [ChatMessage.User(prompt)], Prompt = null } }
            : OpenAiCompatible.ToolPlan.ForModel(model, input);

    /// <summary>
    /// Starts the call. Everything that can still be an HTTP error (context too long, busy, upstream down) is thrown
    /// here as an <see cref="ApiException"/> (<see cref="UpstreamFailureException"/> for upstreams), before any response byte.
    /// </summary>
    public async Task<ModelCall> StartAsync(ServedModel model, InferenceInput input, bool stream, InferenceCaller caller, CancellationToken requestAborted)
    {
        var requestId = caller.RequestId;
        try
        {
            return await StartOnAsync(model, input, stream, requestId, requestAborted).ConfigureAwait(false);
        }
        catch (UpstreamFailureException failure) when (failure.IsAvailabilityFailure && model.Fallbacks.Count > 0)
        {
            foreach (var fallbackId in model.Fallbacks)
            {
                if (registry.FindShared(fallbackId) is not { } fallback)
                {
                    continue;
                }

                try
                {
                    logger.LogWarning("Model {Model} failed ({Code}); falling back to {Fallback}", model.Id, failure.Code, fallbackId);
                    return await StartOnAsync(fallback, input, stream, requestId, requestAborted).ConfigureAwait(false);
                }
                catch (UpstreamFailureException next) when (next.IsAvailabilityFailure)
                {
                    logger.LogWarning("Fallback {Fallback} for {Model} failed too ({Code})", fallbackId, model.Id, next.Code);
                }
                catch (ApiException busy) when (busy.Status == StatusCodes.Status503ServiceUnavailable)
                {
                    logger.LogWarning("Fallback {Fallback} for {Model} is busy", fallbackId, model.Id);
                }
            }

            throw;
        }
    }

    private async Task<ModelCall> StartOnAsync(ServedModel model, InferenceInput input, bool stream, string requestId, CancellationToken requestAborted) => model switch
    {
        LocalServedModel local => StartLocal(local, For(model, input), requestAborted),
        UpstreamServedModel upstream => await UpstreamModelCall.StartAsync(model.Id, upstream.Endpoint, For(model, input).Generation, stream, requestId, requestAborted).ConfigureAwait(false),
        _ => throw new InvalidOperationException($"Unknown model kind {model.GetType().Name}."),
    };

    private LocalModelCall StartLocal(LocalServedModel model, InferenceInput input, CancellationToken requestAborted)
    {
        var request = input.Generation with { MaxTokens = input.Generation.MaxTokens ?? options.Value.DefaultMaxTokens };

        try
        {
            try
            {
                return LocalModelCall.Start(model.Id, model.Model, model.Variant, request, requestAborted);
            }
            catch (ContextLengthExceededException e) when (input.Generation.MaxTokens is null && e.PromptTokens < e.ContextLength)
            {
                // No limit was asked for: the default only caps the completion, it must not reject a prompt that fits.
                return LocalModelCall.Start(model.Id, model.Model, model.Variant, request with { MaxTokens = e.ContextLength - e.PromptTokens }, requestAborted);
            }
        }
        catch (ContextLengthExceededException e)
        {
            var blamesMaxTokens = e.MaxTokens is not null && input.Generation.MaxTokens is not null && e.PromptTokens < e.ContextLength;
            throw new ApiException(StatusCodes.Status400BadRequest, "context_length_exceeded",
                $"This model's context holds {e.ContextLength} tokens; the request needs {e.PromptTokens} for the prompt"
                + (blamesMaxTokens ? $" plus {e.MaxTokens} for the completion." : " and at least one for the completion."),
                blamesMaxTokens ? input.Names.MaxTokens : input.Names.Prompt);
        }
        catch (EngineBusyException e)
        {
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "model_busy",
                $"Model '{model.Id}' is at capacity ({e.ActiveSequences} running, {e.QueuedRequests} waiting). Retry shortly.")
            {
                RetryAfter = TimeSpan.FromSeconds(Math.Max(1, options.Value.BusyRetryAfterSeconds)),
            };
        }
        catch (Exception e) when (e is ModelNotFoundException or ModelUnloadedException)
        {
            throw InferenceErrors.ModelNotFound(model.Id, "model");
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName is nameof(GenerationRequest.Choices) or nameof(GenerationRequest.LogitBias))
        {
            // Limits only the model knows (its choice sequences, its vocabulary); the OpenAI endpoints are the ones that have these.
            throw ApiException.Invalid(e.ParamName == nameof(GenerationRequest.Choices) ? "n" : "logit_bias",
                e.Message.Split(" (Parameter", 2)[0]);
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(input.Names.Prompt, e.Message);
        }
    }
}
