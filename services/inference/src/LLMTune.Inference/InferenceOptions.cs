using LLMTune.Engine.Inference;
using LLMTune.Engine.TinyModel;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference;

/// <summary>
/// The <c>Inference</c> section: the models this service answers for, keyed by model id
/// (e.g. <c>Inference:Models:llmtune/tiny:Path</c>). Each is a local GGUF file or an OpenAI-compatible upstream.
/// </summary>
public sealed class InferenceOptions
{
    public const string Section = "Inference";

    /// <summary>The bundled model's id and its file, relative to the executable's folder.</summary>
    public const string BundledModelId = "llmtune/tiny";
    public const string BundledModelPath = BundledModel.RelativePath;

    public Dictionary<string, ModelOptions> Models { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Completion tokens when a request names no limit (capped by the room the context leaves).</summary>
    public int DefaultMaxTokens { get; set; } = 512;

    /// <summary>Seconds a client is told to wait (Retry-After) when a model's queue is full.</summary>
    public int BusyRetryAfterSeconds { get; set; } = 1;

    /// <summary>
    /// Batch items this replica takes at once (across models). Each local model decodes at most its MaxConcurrency
    /// minus <see cref="BatchReservedSlots"/> of them together, in its continuous batch; the items beyond that wait at
    /// the model's gate already claimed and resolved, so a finished item's slot is refilled at the next decode step
    /// instead of after a round trip through the store and the bus.
    /// </summary>
    public int BatchConcurrency { get; set; } = 16;

    /// <summary>Continuous-batching slots of each local model that batch items leave to synchronous requests.</summary>
    public int BatchReservedSlots { get; set; } = 1;

    /// <summary>How long a started batch item belongs to the replica running it; after that another may take it over.</summary>
    public TimeSpan BatchItemLease { get; set; } = TimeSpan.FromMinutes(10);
}

public sealed class ModelOptions
{
    /// <summary>False removes a model configured elsewhere (e.g. the bundled one) without deleting its settings.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A local GGUF file; relative paths resolve against the executable's folder.</summary>
    public string? Path { get; set; }

    /// <summary>Tokens per sequence (prompt + completion); null uses the model's trained length capped at 4096.</summary>
    public int? ContextLength { get; set; }

    /// <summary>Requests decoded at the same time (continuous batching width).</summary>
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>
    /// Sequences, beyond MaxConcurrency, for the second and later choices of requests with n &gt; 1 (0–7): n may be
    /// at most 1 + this, and those choices never take the slots of other requests. Each costs a KV cache of
    /// ContextLength tokens; lower it for large models whose clients never ask for n.
    /// </summary>
    public int ChoiceSequences { get; set; } = GenerationRequest.MaxChoices - 1;

    /// <summary>Requests that may wait for a free slot; beyond that clients get 503 with Retry-After.</summary>
    public int QueueSize { get; set; } = 16;

    /// <summary>Decode threads; null uses every core.</summary>
    public int? Threads { get; set; }

    /// <summary>An OpenAI-compatible server that answers for this model instead of a local file.</summary>
    public UpstreamOptions? Upstream { get; set; }

    /// <summary>Model ids tried in order when this model's upstream fails (after retries) or its circuit is open.</summary>
    public List<string> Fallbacks { get; set; } = [];
}

public sealed class UpstreamOptions
{
    /// <summary>The API root including the version, e.g. <c>http://vllm:8000/v1</c>.</summary>
    public Uri? BaseUrl { get; set; }

    /// <summary>Bearer key sent upstream; prefer <see cref="ApiKeyEnvironmentVariable"/> for real secrets.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Environment variable holding the key (read when the model is registered).</summary>
    public string? ApiKeyEnvironmentVariable { get; set; }

    /// <summary>The model name the upstream knows; defaults to the LLMTune model id.</summary>
    public string? Model { get; set; }

    /// <summary>Longest wait for the upstream's response headers (per attempt); exceeded → 504.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest gap between two streamed chunks, or to read a whole non-streamed body.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Extra attempts on connection errors and 5xx answers, before anything reached the client.</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>First retry delay; later ones back off exponentially with jitter.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Share of failed attempts within <see cref="CircuitSamplingDuration"/> that opens the circuit.</summary>
    public double CircuitFailureRatio { get; set; } = 0.5;

    public int CircuitMinimumThroughput { get; set; } = 10;

    public TimeSpan CircuitSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit rejects calls before letting one through to probe.</summary>
    public TimeSpan CircuitBreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    public string? ResolveApiKey() =>
        !string.IsNullOrEmpty(ApiKeyEnvironmentVariable) && Environment.GetEnvironmentVariable(ApiKeyEnvironmentVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : ApiKey;
}

/// <summary>Checks every configured model at start so a typo fails fast with a message naming the setting.</summary>
internal sealed class InferenceOptionsValidator : IValidateOptions<InferenceOptions>
{
    public ValidateOptionsResult Validate(string? name, InferenceOptions options)
    {
        var problems = new List<string>();
        if (options.DefaultMaxTokens < 1)
        {
            problems.Add("Inference:DefaultMaxTokens must be at least 1.");
        }

        if (options.BusyRetryAfterSeconds < 0)
        {
            problems.Add("Inference:BusyRetryAfterSeconds must not be negative.");
        }

        if (options.BatchConcurrency < 1)
        {
            problems.Add("Inference:BatchConcurrency must be at least 1.");
        }

        if (options.BatchReservedSlots < 0)
        {
            problems.Add("Inference:BatchReservedSlots must not be negative.");
        }

        if (options.BatchItemLease <= TimeSpan.Zero)
        {
            problems.Add("Inference:BatchItemLease must be positive.");
        }

        foreach (var (id, model) in options.Models.Where(m => m.Value.Enabled))
        {
            var prefix = $"Inference:Models:{id}";
            if (id.StartsWith("ft:", StringComparison.Ordinal))
            {
                problems.Add($"{prefix}: ids starting with 'ft:' are reserved for deployed fine-tunes.");
            }

            if (string.IsNullOrWhiteSpace(model.Path) == (model.Upstream is null))
            {
                problems.Add($"{prefix}: set exactly one of Path (a local GGUF file) or Upstream (an OpenAI-compatible server).");
            }

            if (model.ContextLength is < 8)
            {
                problems.Add($"{prefix}:ContextLength must be at least 8.");
            }

            if (model.MaxConcurrency < 1 || model.QueueSize < 0 || model.Threads is < 1)
            {
                problems.Add($"{prefix}: MaxConcurrency and Threads must be at least 1, QueueSize at least 0.");
            }

            if (model.ChoiceSequences is < 0 or >= GenerationRequest.MaxChoices)
            {
                problems.Add($"{prefix}:ChoiceSequences must be between 0 and {GenerationRequest.MaxChoices - 1}.");
            }

            if (model.Fallbacks.Any(f => f == id || !options.Models.ContainsKey(f)))
            {
                problems.Add($"{prefix}:Fallbacks must name other configured models.");
            }

            if (model.Upstream is { } upstream)
            {
                if (upstream.BaseUrl is not { IsAbsoluteUri: true } url || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                {
                    problems.Add($"{prefix}:Upstream:BaseUrl must be an absolute http(s) URL such as http://vllm:8000/v1.");
                }

                if (upstream.AttemptTimeout <= TimeSpan.Zero || upstream.ReadTimeout <= TimeSpan.Zero)
                {
                    problems.Add($"{prefix}:Upstream timeouts must be positive.");
                }

                if (upstream.MaxRetries is < 0 or > 10)
                {
                    problems.Add($"{prefix}:Upstream:MaxRetries must be between 0 and 10.");
                }

                if (upstream.CircuitFailureRatio is <= 0 or > 1 || upstream.CircuitMinimumThroughput < 2
                    || upstream.CircuitSamplingDuration < TimeSpan.FromMilliseconds(500) || upstream.CircuitBreakDuration < TimeSpan.FromMilliseconds(500))
                {
                    problems.Add($"{prefix}:Upstream circuit settings: ratio in (0, 1], minimum throughput ≥ 2, durations ≥ 0.5 s.");
                }
            }
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
