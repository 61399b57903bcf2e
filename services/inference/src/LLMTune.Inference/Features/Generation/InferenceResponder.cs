using System.Text.Json;
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
    Task StreamDeltaAsync(HttpResponse response, string model, string delta);

    Task StreamEndAsync(HttpResponse response, InferenceOutcome outcome, long latencyMs);

    Task StreamErrorAsync(HttpResponse response, Platform.Errors.ApiErrorBody error);
}

/// <summary>
/// The one path from a validated request to an answer, for every inference endpoint: resolve the model for the
/// workspace, start the call (errors before the first byte are HTTP errors), meter it, then answer as JSON or as
/// server-sent events in the endpoint's format.
/// </summary>
public sealed class InferenceResponder(InferenceService inference, UsageMeter meter)
{
    public async Task<IResult> RespondAsync(
        HttpContext http, string? modelId, string modelParam, InferenceInput input, bool stream, long startedAt, IInferenceFormat format)
    {
        var caller = InferenceCaller.From(http);
        var model = await inference.ResolveAsync(modelId, caller.WorkspaceId, modelParam, http.RequestAborted);
        var call = await inference.StartAsync(model, input, stream, caller, http.RequestAborted);
        await using var session = meter.Begin(caller, call, startedAt, stream, http.Response);
        if (!stream)
        {
            InferenceOutcome outcome;
            try
            {
                outcome = await call.CompleteAsync(http.RequestAborted);
            }
            catch (Exception e) when (e is not Platform.Errors.ApiException && InferenceErrors.MidCall(e) is { } failure)
            {
                throw failure;
            }

            return Results.Json(format.Response(outcome, session.ElapsedMs), format.Json);
        }

        await ServerSentEvents.StartAsync(http.Response);
        await format.StreamStartAsync(http.Response, call.Model);
        await ServerSentEvents.RelayAsync(http, call, session, format);
        return Results.Empty;
    }
}
