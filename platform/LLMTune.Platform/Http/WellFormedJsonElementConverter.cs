using System.Text.Json;
using System.Text.Json.Serialization;

namespace LLMTune.Platform.Http;

/// <summary>
/// Reads a <see cref="JsonElement"/> (free-form request fields such as <c>prompt</c>, <c>stop</c>, <c>metadata</c>)
/// only when all of its text is valid UTF-16. System.Text.Json keeps an element's strings as raw escaped bytes, so an
/// escaped lone surrogate (<c>"\ud800"</c>) would otherwise pass binding and throw later, wherever the endpoint reads
/// the string (a 500). Failing here makes it a <see cref="JsonException"/>, which the error shape answers as a 400
/// <c>invalid_json</c> like every other malformed body; typed <c>string</c> properties already fail this way.
/// </summary>
public sealed class WellFormedJsonElementConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var element = JsonElement.ParseValue(ref reader);
        RequireValidText(element);
        return element;
    }

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options) => value.WriteTo(writer);

    private static void RequireValidText(JsonElement element)
    {
        try
        {
            Visit(element);
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"The JSON text is not valid UTF-16: {e.Message}", e);
        }
    }

    private static void Visit(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                _ = element.GetString(); // unescapes: throws on a lone or reversed surrogate
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Visit(item);
                }

                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    _ = property.Name;
                    Visit(property.Value);
                }

                break;
        }
    }
}
