using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Serilog.AspNetCore;
using Serilog.Events;

namespace LLMTune.Platform.Http;

/// <summary>
/// The access log: one structured line per request (method, route, path, status, duration, request id, workspace,
/// and for inference the model and tokens). Ordinary successful requests can be sampled or silenced; errors and slow
/// requests are always written.
/// </summary>
public sealed class AccessLogOptions
{
    public const string Section = "AccessLog";

    /// <summary>Share of ordinary (fast, successful) requests written, 0 to 1 (env <c>AccessLog__SampleRate</c>); 0 silences them.</summary>
    [Range(0.0, 1.0)]
    public double SampleRate { get; set; } = 1.0;

    /// <summary>Requests slower than this are always written, at Warning.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan SlowRequestThreshold { get; set; } = TimeSpan.FromSeconds(1);
}

public static class AccessLog
{
    private const string ModelItem = "llmtune:access:model";
    private const string PromptTokensItem = "llmtune:access:prompt-tokens";
    private const string CompletionTokensItem = "llmtune:access:completion-tokens";

    /// <summary>Adds the model and token counts of an inference to the request's access line.</summary>
    public static void RecordInference(HttpContext http, string model, int promptTokens, int completionTokens)
    {
        http.Items[ModelItem] = model;
        http.Items[PromptTokensItem] = promptTokens;
        http.Items[CompletionTokensItem] = completionTokens;
    }

    /// <summary>Serilog's request logging set up as the access log.</summary>
    public static void Configure(RequestLoggingOptions o, AccessLogOptions options)
    {
        o.MessageTemplate = "HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.0} ms";
        o.GetLevel = (http, elapsedMs, error) => Level(http.Response.StatusCode, elapsedMs, error, options);
        o.EnrichDiagnosticContext = (diagnostics, http) =>
        {
            diagnostics.Set("RequestId", http.TraceIdentifier);
            if (http.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } route })
            {
                diagnostics.Set("Route", route);
            }

            if (http.User.FindFirst(Identity.WorkspaceClaims.WorkspaceId)?.Value is { } workspace)
            {
                diagnostics.Set("WorkspaceId", workspace);
            }

            if (http.Items.TryGetValue(ModelItem, out var model))
            {
                diagnostics.Set("Model", model);
                diagnostics.Set("PromptTokens", http.Items[PromptTokensItem]);
                diagnostics.Set("CompletionTokens", http.Items[CompletionTokensItem]);
            }
        };
    }

    /// <summary>
    /// Errors at Error, client errors and slow requests at Warning (never sampled away); the rest at Information when
    /// sampled in, else at Verbose, which the default minimum level drops before the line is built.
    /// </summary>
    public static LogEventLevel Level(int status, double elapsedMs, Exception? error, AccessLogOptions options)
    {
        if (error is not null || status >= 500)
        {
            return LogEventLevel.Error;
        }

        if (status >= 400 || elapsedMs >= options.SlowRequestThreshold.TotalMilliseconds)
        {
            return LogEventLevel.Warning;
        }

        return options.SampleRate >= 1.0 || (options.SampleRate > 0 && Random.Shared.NextDouble() < options.SampleRate)
            ? LogEventLevel.Information
            : LogEventLevel.Verbose;
    }
}
