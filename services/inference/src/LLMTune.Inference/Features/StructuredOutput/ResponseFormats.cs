using System.Text.RegularExpressions;
using LLMTune.Inference.Features.OpenAiCompatible;
using LLMTune.Platform.Errors;

namespace LLMTune.Inference.Features.StructuredOutput;

/// <summary>OpenAI's <c>response_format</c> for local models: the grammar that makes the answer JSON (matching the schema).</summary>
internal static partial class ResponseFormats
{
    /// <summary>The grammar for <paramref name="format"/>; null for plain text.</summary>
    public static string? Grammar(ResponseFormatIn? format)
    {
        switch (format?.Type)
        {
            case null when format is null:
            case "text":
                return null;
            case "json_object":
                return JsonSchemaGrammar.AnyObject();
            case "json_schema":
                var spec = format.JsonSchema ?? throw ApiException.Invalid("response_format.json_schema", "response_format.json_schema is required for type json_schema.");
                if (spec.Name is null || !NamePattern().IsMatch(spec.Name))
                {
                    throw ApiException.Invalid("response_format.json_schema.name", "response_format.json_schema.name is 1–64 letters, digits, underscores or dashes.");
                }

                return spec.Schema is { ValueKind: System.Text.Json.JsonValueKind.Object } schema
                    ? JsonSchemaGrammar.FromSchema(schema, "response_format.json_schema.schema")
                    : spec.Schema is null ? JsonSchemaGrammar.AnyObject()
                    : throw ApiException.Invalid("response_format.json_schema.schema", "response_format.json_schema.schema must be a JSON schema object.");
            default:
                throw ApiException.Invalid("response_format.type", "response_format.type must be text, json_object or json_schema.");
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();
}
