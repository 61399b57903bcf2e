using System.Text.Json;
using LLMTune.Inference.Features.Models;
using LLMTune.Inference.Features.Upstream;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Generation;

/// <summary>
/// How one API writes an answer: the JSON body, or the stream's events (first, per text piece, last, and an error that
/// happens after the first byte). Native, chat and completions each have one; everything else is shared.
/// </summary>
public interface IInferenceFormat
{
    JsonSerializerOptions Json { get; }

    object Response(InferenceOutcome outcome, long latencyMs);

    Task StreamStartAsync(HttpResponse response, string model);

    /// <summary>Writes one piece without flushing (the relay flushes when the model pauses or a few piled up).</summary>
    Task StreamDeltaAsync(HttpResponse response, string model, ModelDelta delta);

    Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs);

    Task StreamErrorAsync(HttpResponse response, Platform.Errors.ApiErrorBody error);
}

/// <summary>
/// One request as an endpoint hands it over: the model it names (and how that parameter is called), the validated input
/// for models this service runs (built only once the model is known to be local, so upstream-only parameters are not
/// refused), whether to stream, and for OpenAI-compatible endpoints the raw body an upstream model receives as is.
/// </summary>
public sealed record InferenceRequest(
    string? ModelId, string ModelParam, Func<InferenceInput> Input, bool Stream, long StartedAt, UpstreamRequest? Upstream = null);

/// <summary>
/// The one path from a request to an answer, for every inference endpoint: resolve the model for the workspace; for an
/// upstream model with a raw body, relay it (<see cref="UpstreamPassthrough"/>); otherwise start the call (errors
/// before the first byte are HTTP errors), meter it, and answer as JSON or server-sent events in the endpoint's format.
/// Fallback models take over when an upstream is unavailable.
/// </summary>
public sealed class InferenceResponder(InferenceService inference, UsageMeter meter)
{
    public async Task<IResult> RespondAsync(HttpContext http, InferenceRequest request, IInferenceFormat format)
    {
        var caller = InferenceCaller.From(http);
        var model = await inference.ResolveAsync(request.ModelId, caller.WorkspaceId, request.ModelParam, http.RequestAborted);
        if (request.Upstream is { } raw && model is UpstreamServedModel upstream)
        {
            if (await PassThroughAsync(http, upstream, raw, request.Stream, caller, request.StartedAt) is not { } fallback)
            {
                return Results.Empty;
            }

            model = fallback;
        }

        var input = request.Input();
        var call = await inference.StartAsync(model, input, request.Stream, caller, http.RequestAborted);
        await using var session = meter.Begin(caller, call, request.StartedAt, request.Stream, http.Response);
        if (!request.Stream)
        {
            InferenceOutcome outcome;
            try
            {
                outcome = await call.CompleteAsync(http.RequestAborted);
            }
            catch (Exception e) when (e is not ApiException && InferenceErrors.MidCall(e) is { } failure)
            {
                throw failure;
            }

            var answer = format.Response(outcome, session.ElapsedMs);
            await session.RecordBeforeAnswerAsync();
            AccessLog.RecordInference(http, outcome.Model, outcome.PromptTokens, outcome.CompletionTokens);
            return Results.Json(answer, format.Json);
        }

        await ServerSentEvents.StartAsync(http.Response);
        await format.StreamStartAsync(http.Response, call.Model);
        await ServerSentEvents.RelayAsync(http, call, session, format);
        var streamed = call.Snapshot();
        AccessLog.RecordInference(http, streamed.Model, streamed.PromptTokens, streamed.CompletionTokens);
        return Results.Empty;
    }

    /// <summary>
    /// Relays an OpenAI-compatible body to an upstream model (or its upstream fallbacks) and meters it; returns null
    /// when the answer has been relayed, or the local fallback that must answer instead.
    /// </summary>
    public async Task<ServedModel?> PassThroughAsync(HttpContext http, UpstreamServedModel model, UpstreamRequest raw, bool stream, InferenceCaller caller, long startedAt)
    {
        var (answering, answer) = await StartUpstreamAsync(model, raw, stream, caller, http.RequestAborted);
        if (answering is not UpstreamServedModel relayed)
        {
            return answering;
        }

        var outcome = await UpstreamPassthrough.RelayAsync(http, relayed, answer!, stream);
        var latencyMs = ElapsedMs(startedAt);
        AccessLog.RecordInference(http, outcome.Model, outcome.PromptTokens, outcome.CompletionTokens);
        http.Response.OnCompleted(() => meter.PublishAfterResponse(caller, outcome, latencyMs, stream));
        return null;
    }

    /// <summary>
    /// Starts the pass-through on the model or, while upstreams are unavailable, on its fallbacks in order; returns the
    /// model that answered with its started answer, or a local fallback (no answer yet) for the regular path.
    /// </summary>
    internal async Task<(ServedModel Model, HttpResponseMessage? Answer)> StartUpstreamAsync(
        UpstreamServedModel model, UpstreamRequest raw, bool stream, InferenceCaller caller, CancellationToken cancellationToken)
    {
        try
        {
            return (model, await UpstreamPassthrough.StartAsync(model, raw, stream, caller, cancellationToken));
        }
        catch (UpstreamFailureException failure) when (failure.IsAvailabilityFailure && model.Fallbacks.Count > 0)
        {
            foreach (var fallback in inference.FallbacksOf(model))
            {
                if (fallback is not UpstreamServedModel next)
                {
                    return (fallback, null);
                }

                try
                {
                    return (next, await UpstreamPassthrough.StartAsync(next, raw, stream, caller, cancellationToken));
                }
                catch (UpstreamFailureException again) when (again.IsAvailabilityFailure)
                {
                    // try the next one
                }
            }

            throw;
        }
    }

    private static long ElapsedMs(long startedAt) => (long)System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
}
