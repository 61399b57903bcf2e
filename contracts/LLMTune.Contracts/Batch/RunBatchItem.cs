namespace LLMTune.Contracts;

/// <summary>
/// A command from the batch service to the inference service: run one batch item through the inference path and publish
/// <see cref="BatchItemCompleted"/>. <paramref name="ItemKey"/> is unique per item (the batch id and the item's position);
/// the same item may be requested more than once (redelivery, or a re-request after its result never came) and runs to
/// completion at most once per inference store. An item of an OpenAI batch carries its request body as
/// <paramref name="OpenAiBody"/> for <paramref name="OpenAiUrl"/> (<c>/v1/chat/completions</c> or <c>/v1/completions</c>)
/// instead of the native fields, and is answered with that endpoint's response body.
/// </summary>
public sealed record RunBatchItem(
    string WorkspaceId,
    string CorrelationId,
    DateTimeOffset Timestamp,
    string BatchId,
    string ItemKey,
    string KeyId,
    string ModelId,
    string Prompt,
    float? Temperature,
    int? MaxTokens,
    float? TopP,
    int Attempt,
    string? OpenAiUrl = null,
    string? OpenAiBody = null) : IWorkspaceEvent;
