using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LLMTune.Platform.Http;

/// <summary>Timestamps go out as ISO 8601 UTC to the second, e.g. <c>2025-11-01T15:23:54Z</c> (docs/architecture.md, API conventions).</summary>
public sealed class UtcSecondsDateTimeConverter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTime().ToUniversalTime();

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
}
