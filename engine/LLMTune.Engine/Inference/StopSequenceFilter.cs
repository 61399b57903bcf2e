using System.Text;

namespace LLMTune.Engine.Inference;

/// <summary>
/// Turns the byte pieces of sampled tokens into text that is safe to stream: UTF-8 characters split across
/// tokens are joined, and text that might be the start of a stop sequence is held back until it is known not
/// to be one, so the output never contains a stop sequence even when it spans several tokens.
/// </summary>
public sealed class StopSequenceFilter
{
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    private readonly string[] _stops;
    private readonly StringBuilder _held = new();
    private readonly StringBuilder _released = new();
    private char[] _chars = new char[64];

    public StopSequenceFilter(IEnumerable<string> stopSequences)
    {
        _stops = stopSequences.Where(s => s.Length > 0).Distinct().ToArray();
    }

    /// <summary>True once a stop sequence was seen; later input is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>All text released so far.</summary>
    public string Text => _released.ToString();

    /// <summary>Adds a token's bytes and returns the text that can be released now.</summary>
    public string Push(ReadOnlySpan<byte> piece)
    {
        if (Stopped)
        {
            return "";
        }

        var needed = _utf8.GetCharCount(piece, flush: false);
        if (needed > _chars.Length)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        var count = _utf8.GetChars(piece, _chars, flush: false);
        _held.Append(_chars, 0, count);
        return Release(final: false);
    }

    /// <summary>Releases everything still held (generation ended for another reason than a stop sequence).</summary>
    public string Flush()
    {
        if (Stopped)
        {
            return "";
        }

        var count = _utf8.GetChars([], _chars, flush: true);
        _held.Append(_chars, 0, count);
        return Release(final: true);
    }

    private string Release(bool final)
    {
        var held = _held.ToString();
        var stopAt = -1;
        foreach (var stop in _stops)
        {
            var index = held.IndexOf(stop, StringComparison.Ordinal);
            if (index >= 0 && (stopAt < 0 || index < stopAt))
            {
                stopAt = index;
            }
        }

        string release;
        if (stopAt >= 0)
        {
            Stopped = true;
            release = held[..stopAt];
            _held.Clear();
        }
        else
        {
            var keep = final ? 0 : LongestStopPrefixSuffix(held);
            release = held[..^keep];
            _held.Remove(0, held.Length - keep);
        }

        _released.Append(release);
        return release;
    }

    // The longest tail of the held text that is a proper prefix of some stop sequence: it may still become one.
    private int LongestStopPrefixSuffix(string held)
    {
        var best = 0;
        foreach (var stop in _stops)
        {
            for (var length = Math.Min(stop.Length - 1, held.Length); length > best; length--)
            {
                if (held.AsSpan(held.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    best = length;
                    break;
                }
            }
        }

        return best;
    }
}
