using LLMTune.Platform.Bus;
using LLMTune.Platform.Errors;
using LLMTune.Platform.Http;
using LLMTune.Platform.Identity;
using LLMTune.Platform.Modules;
using LLMTune.Platform.Outbox;
using LLMTune.Platform.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Scalar.AspNetCore;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace LLMTune.Platform;

public sealed class HttpLimitsOptions
{
    public const string Section = "Http";

    /// <summary>Largest request body accepted, in bytes; larger bodies get 413 (env <c>Http__MaxRequestBodyBytes</c>).</summary>
    [System.ComponentModel.DataAnnotations.Range(1024, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>How long in-flight requests may take to finish on shutdown.</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Service defaults every module gets from one call (dotnet/eShop style): logging, telemetry, health, the error shape,
/// request ids, validated options, the document store, the bus, HTTP resilience, OpenAPI and authentication plumbing.
/// </summary>
public static class ServiceDefaults
{
    /// <summary>Set (environment or configuration) to export traces and metrics over OTLP, e.g. <c>http://otel-collector:4317</c>.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static WebApplicationBuilder AddServiceDefaults(
        this WebApplicationBuilder builder, HostTopology topology, IReadOnlyList<IServiceModule> modules)
    {
        var services = builder.Services;
        services.AddSingleton(topology);
        services.AddSingleton(TimeProvider.System);

        services.AddSerilog((sp, log) => log
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Information)
            .MinimumLevel.Override("MassTransit", LogEventLevel.Warning)
            .MinimumLevel.Override("Yarp", LogEventLevel.Warning)
            // HttpClient writes two lines per call at Information; the access log already has the request.
            .MinimumLevel.Override("System.Net.Http.HttpClient", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.AspNetCore.DataProtection", LogEventLevel.Error) // keys only back auth cookies we never issue
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            // Written by a background thread from a bounded buffer, so a slow console or pipe never blocks a request.
            .WriteTo.Async(a => a.Console(new RenderedCompactJsonFormatter()), bufferSize: 10_000));

        services.AddOptions<AccessLogOptions>().BindConfiguration(AccessLogOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        services.AddOptions<HttpLimitsOptions>().BindConfiguration(HttpLimitsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<OutboundOptions>().BindConfiguration(OutboundOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OutboundOptions>, OutboundOptionsValidator>();
        // Read through IOptions, so a bad value fails validation instead of being used.
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<HttpLimitsOptions>>((k, limits) => k.Limits.MaxRequestBodySize = limits.Value.MaxRequestBodyBytes);
        services.AddOptions<HostOptions>().Configure<IOptions<HttpLimitsOptions>>((h, limits) => h.ShutdownTimeout = limits.Value.ShutdownTimeout);

        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.Converters.Add(new UtcSecondsDateTimeConverter());
            o.SerializerOptions.Converters.Add(new WellFormedJsonElementConverter());
        });
        services.AddErrorShape();
        services.AddDocumentStore(builder.Configuration);
        services.AddLLMTuneBus(builder.Configuration, modules);
        services.AddOutbox();

        services.AddHealthChecks();
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("llmtune", serviceInstanceId: Environment.MachineName))
            .WithTracing(t => t
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddSource("MassTransit"))
            .WithMetrics(m => m
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddMeter("System.Runtime")
                .AddMeter("MassTransit")
                .AddPrometheusExporter());
        if (!string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointVariable]))
        {
            // Traces, metrics and logs to an OpenTelemetry collector; the exporter reads the standard OTEL_* variables.
            telemetry.UseOtlpExporter();
        }

        // Polly-based resilience (retry with backoff, circuit breaker, timeouts) for every HttpClient by default.
        services.ConfigureHttpClientDefaults(http => http.AddStandardResilienceHandler());

        services.AddOpenApi();

        // Every endpoint needs an authenticated workspace unless it says AllowAnonymous.
        var auth = services.AddAuthentication();
        if (!topology.Runs("gateway"))
        {
            // A split-mode service: only the gateway's forwarded identity counts.
            services.AddOptions<InternalAuthOptions>().BindConfiguration(InternalAuthOptions.Section)
                .Validate(o => !string.IsNullOrWhiteSpace(o.Secret), "Internal:Secret (env Internal__Secret) is required in split mode.")
                .ValidateOnStart();
            auth.AddScheme<AuthenticationSchemeOptions, InternalIdentityHandler>(InternalIdentityHandler.SchemeName, null);
            services.Configure<AuthenticationOptions>(o => o.DefaultScheme = InternalIdentityHandler.SchemeName);
            // The operator's /admin routes a service owns, forwarded by the gateway once it has checked the operator token.
            services.AddAuthorizationBuilder().AddPolicy(OperatorPolicy.Name, policy => policy
                .AddAuthenticationSchemes(InternalIdentityHandler.SchemeName)
                .RequireRole(OperatorPolicy.Role));
        }

        services.AddAuthorization(o => o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());

        foreach (var module in modules)
        {
            module.AddServices(builder, topology);
        }

        return builder;
    }

    public static WebApplication UseServiceDefaults(this WebApplication app, IReadOnlyList<IServiceModule> modules)
    {
        var topology = app.Services.GetRequiredService<HostTopology>();
        app.UseMiddleware<RequestIdMiddleware>();
        var accessLog = app.Services.GetRequiredService<IOptions<AccessLogOptions>>().Value;
        app.UseSerilogRequestLogging(o => AccessLog.Configure(o, accessLog));
        app.UseErrorShape();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapGet("/healthz", () => Results.Ok(new { status = "alive" })).AllowAnonymous().ExcludeFromDescription();
        app.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains("ready"),
            ResponseWriter = WriteHealthAsync,
        }).AllowAnonymous();
        app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
        app.MapScalarApiReference("/docs", o => o.WithOpenApiRoutePattern("/openapi/{documentName}.json")).AllowAnonymous();

        foreach (var module in modules)
        {
            module.MapEndpoints(app, topology);
        }

        return app;
    }

    private static Task WriteHealthAsync(HttpContext http, HealthReport report) =>
        http.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        });
}
