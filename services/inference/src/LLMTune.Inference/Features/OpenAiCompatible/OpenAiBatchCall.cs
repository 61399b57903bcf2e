using LLMTune.Inference.Features.Generation;
using LLMTune.Platform.Errors;

namespace LLMTune.Inference.Features.OpenAiCompatible;

/// <summary>
/// One request line of an OpenAI batch as its endpoint reads it: the model it names, its input for the generation path
/// (validated when built, as for a synchronous request) and the format that writes the endpoint's answer.
/// </summary>
internal sealed record OpenAiBatchCall(string? Model, Func<InferenceInput> Input, IInferenceFormat Format)
{
    public const string ChatCompletionsUrl = "/v1/chat/completions";
    public const string CompletionsUrl = "/v1/completions";

    public static OpenAiBatchCall For(string url, ReadOnlyMemory<byte> body, TimeProvider time) => url switch
    {
        ChatCompletionsUrl => ChatCompletionsEndpoint.ForBatch(body, time),
        CompletionsUrl => CompletionsEndpoint.ForBatch(body, time),
        _ => throw ApiException.Invalid("url", $"url must be {ChatCompletionsUrl} or {CompletionsUrl}."),
    };
}
