using Microsoft.Extensions.Options;

namespace LLMTune.Platform.Http;

/// <summary>
/// The <c>Outbound</c> section: the one SSRF allow-list for every connection to a URL a customer gives (webhook
/// deliveries, job and batch <c>webhookUrl</c>s, https datasets). Listed hosts may resolve to internal addresses
/// (loopback, private, link-local, ...) and may use plain http; for development and tests only.
/// </summary>
public sealed class OutboundOptions
{
    public const string Section = "Outbound";

    /// <summary>Host names, addresses or CIDR ranges (env <c>Outbound__AllowedHosts__0</c>, ...). Empty: public https destinations only.</summary>
    public List<string> AllowedHosts { get; set; } = [];

    public HostAllowList AllowList() => new(AllowedHosts);
}

internal sealed class OutboundOptionsValidator : IValidateOptions<OutboundOptions>
{
    public ValidateOptionsResult Validate(string? name, OutboundOptions options)
    {
        var problems = options.AllowedHosts.Where(h => !HostAllowList.IsValidEntry(h.Trim()))
            .Select(h => $"Outbound:AllowedHosts: '{h}' is neither a host name, an address nor a CIDR range.").ToList();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
