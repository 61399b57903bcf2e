using System.Text.Json;
using LLMTune.Billing.Features.Plans;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace LLMTune.Billing.Features.Admission;

/// <summary>
/// The most tokens an inference request can use, known before it runs: its body's size in bytes bounds its prompt
/// (every token of a byte-level tokenizer stands for at least one byte, and the JSON around the text outweighs the
/// template's special tokens), plus its completion cap (<c>maxTokens</c>, <c>max_tokens</c> or
/// <c>max_completion_tokens</c>, else <see cref="AdmissionOptions.DefaultMaxTokens"/>). Null for requests that run
/// no inference. Batches are not estimated: their items count what they use as they finish.
/// </summary>
public sealed class TokenEstimator(IOptionsMonitor<BillingOptions> options)
{
    private static readonly string[] CapNames = ["maxTokens", "max_tokens", "max_completion_tokens"];

    public static bool RunsInference(HttpRequest request)
    {
        if (!HttpMethods.IsPost(request.Method))
        {
            return false;
        }

        var path = request.Path.Value?.TrimEnd('/') ?? "";
        return path is "/v1/chat/completions" or "/v1/completions" or "/v1/playground/inference"
            || (path.StartsWith("/v1/models/", StringComparison.Ordinal) && path.EndsWith("/inference", StringComparison.Ordinal));
    }

    public async Task<long?> WorstCaseAsync(HttpContext http)
    {
        if (!RunsInference(http.Request))
        {
            return null;
        }

        // The endpoint (or the proxy) reads the body again from the start.
        http.Request.EnableBuffering();
        using var body = new MemoryStream();
        await http.Request.Body.CopyToAsync(body, http.RequestAborted);
        http.Request.Body.Position = 0;
        var bytes = body.GetBuffer().AsMemory(0, (int)body.Length);
        return bytes.Length + (Cap(bytes) ?? options.CurrentValue.Admission.DefaultMaxTokens);
    }

    /// <summary>
    /// The completion cap the body names; null when it names none, or not as a number, or is not JSON (the endpoint then
    /// answers 400).
    /// </summary>
    private static long? Cap(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            using var json = JsonDocument.Parse(bytes);
            if (json.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            long? cap = null;
            foreach (var name in CapNames)
            {
                if (json.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
                    && value.TryGetInt64(out var tokens) && tokens > 0)
                {
                    // Of several, the inference service honours one; reserving the largest is always enough.
                    cap = Math.Max(cap ?? 0, tokens);
                }
            }

            return cap;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
