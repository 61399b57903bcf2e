using System.Runtime.InteropServices;
using System.Text.Json;
using LLMTune.Engine.Inference;
using LLMTune.Inference.Features.Generation;
using LLMTune.Inference.Features.Models;
using LLMTune.Platform.Errors;
using Microsoft.AspNetCore.Http;

namespace LLMTune.Inference.Features.Embeddings;

/// <summary>How one API spells the embedding parameters in its errors (<c>encoding_format</c> or <c>encodingFormat</c>).</summary>
public sealed record EmbeddingParameterNames(string Input, string EncodingFormat, string Dimensions)
{
    public static readonly EmbeddingParameterNames OpenAi = new("input", "encoding_format", "dimensions");
    public static readonly EmbeddingParameterNames Native = new("input", "encodingFormat", "dimensions");
}

/// <summary>Embedding vectors of a local model for validated inputs, and the tokens they took (for usage and metering).</summary>
public sealed record EmbeddingBatch(IReadOnlyList<float[]> Vectors, int PromptTokens);

/// <summary>
/// Embeddings on this server's own models, shared by <c>/v1/embeddings</c> and the native route: input as OpenAI allows
/// it (a string, a list of strings, a token array or a list of token arrays), the model's mean-pooled last hidden
/// states, L2-normalised, as floats or base64 (little-endian float32, like OpenAI).
/// </summary>
public static class LocalEmbeddings
{
    /// <summary>OpenAI's limit on inputs per request.</summary>
    public const int MaxInputs = 2048;

    public const string Float = "float";
    public const string Base64 = "base64";

    /// <summary>The inputs: texts or token arrays; anything else is a 400 naming <paramref name="param"/>.</summary>
    public static IReadOnlyList<EmbeddingInput> ParseInput(JsonElement? input, string param)
    {
        const string Shape = "must be a non-empty string, a list of non-empty strings, a list of token ids or a list of lists of token ids";
        switch (input)
        {
            case { ValueKind: JsonValueKind.String } text when text.GetString() is { Length: > 0 } value:
                return [new EmbeddingInput(value, null)];
            case { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() is > 0 and <= MaxInputs:
                if (list.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number))
                {
                    return [new EmbeddingInput(null, TokenIds(list, param))];
                }

                var items = new List<EmbeddingInput>(list.GetArrayLength());
                foreach (var item in list.EnumerateArray())
                {
                    items.Add(item switch
                    {
                        { ValueKind: JsonValueKind.String } text when text.GetString() is { Length: > 0 } value => new EmbeddingInput(value, null),
                        { ValueKind: JsonValueKind.Array } tokens when tokens.GetArrayLength() > 0 && tokens.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number)
                            => new EmbeddingInput(null, TokenIds(tokens, param)),
                        _ => throw ApiException.Invalid(param, $"{param} {Shape}."),
                    });
                }

                return items;
            case { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() > MaxInputs:
                throw ApiException.Invalid(param, $"{param} takes at most {MaxInputs} inputs per request.");
            default:
                throw ApiException.Invalid(param, $"{param} {Shape}.");
        }
    }

    private static int[] TokenIds(JsonElement list, string param) =>
        list.EnumerateArray().Select(e => e.TryGetInt32(out var id) ? id : throw ApiException.Invalid(param, $"{param} token ids must be integers.")).ToArray();

    /// <summary>Checks the output options before any work: the format, and dimensions (only the model's own width).</summary>
    public static string Format(string? encodingFormat, int? dimensions, LocalServedModel model, EmbeddingParameterNames names)
    {
        var format = encodingFormat ?? Float;
        if (format is not (Float or Base64))
        {
            throw ApiException.Invalid(names.EncodingFormat, $"{names.EncodingFormat} must be '{Float}' or '{Base64}'.");
        }

        var width = model.Model.Summary.EmbeddingLength;
        if (dimensions is { } asked && asked != width)
        {
            // Cutting a vector short only keeps meaning for models trained for it (Matryoshka); these are not.
            throw ApiException.Invalid(names.Dimensions, $"Model '{model.Id}' gives {width}-dimensional embeddings and cannot shorten them; leave {names.Dimensions} out or set it to {width}.");
        }

        return format;
    }

    /// <summary>Tokenizes and embeds; engine refusals become 400s naming the input, an unloaded model a 404.</summary>
    public static async Task<EmbeddingBatch> EmbedAsync(LocalServedModel model, IReadOnlyList<EmbeddingInput> inputs, EmbeddingParameterNames names, CancellationToken cancellationToken)
    {
        try
        {
            var tokens = inputs.Select(i => i.Tokens ?? model.Model.TokenizeForEmbedding(i.Text!)).ToArray();
            var vectors = await model.Model.EmbedAsync(tokens, cancellationToken).ConfigureAwait(false);
            return new EmbeddingBatch(vectors, tokens.Sum(t => t.Length));
        }
        catch (ContextLengthExceededException e)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, "context_length_exceeded",
                $"This model embeds at most {e.ContextLength} tokens per input; one input has {e.PromptTokens}.", names.Input);
        }
        catch (Exception e) when (e is ModelNotFoundException or ModelUnloadedException)
        {
            throw InferenceErrors.ModelNotFound(model.Id, "model");
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(names.Input, e.Message.Split(" (Parameter", 2)[0]);
        }
    }

    /// <summary>A vector as JSON: the floats, or base64 of their little-endian float32 bytes.</summary>
    public static object Encode(float[] vector, string format) =>
        format == Base64 ? Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan())) : vector;
}

/// <summary>One input to embed: a text, or token ids as given.</summary>
public sealed record EmbeddingInput(string? Text, int[]? Tokens);
