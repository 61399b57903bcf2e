using System.Runtime.CompilerServices;
using System.Text.Json;

namespace LLMTune.Inference.Tests.Support;

/// <summary>One server-sent event: its name (null when none was given) and its data line.</summary>
public sealed record SseEvent(string? Name, string Data)
{
    public JsonElement Json => JsonDocument.Parse(Data).RootElement.Clone();
}

public static class SseReader
{
    /// <summary>Reads events as they arrive (the response must have been read with ResponseHeadersRead).</summary>
    public static async IAsyncEnumerable<SseEvent> ReadEventsAsync(this HttpResponseMessage response, [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        string? name = null;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("event:", StringComparison.Ordinal))
            {
                name = line[6..].Trim();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                yield return new SseEvent(name, line[5..].Trim());
                name = null;
            }
        }
    }
}
