using System.Net;
using LLMTune.Billing.Features.Charging;
using LLMTune.Contracts;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing.Tests;

/// <summary>Fine-tunes are charged per trained token from <c>TrainingCompleted</c>, once per job, at the plan's configured price.</summary>
public sealed class FineTunePricingTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 7, 14, 8, 0, 0, TimeSpan.Zero);
    private BillingHost billing = null!;

    public async ValueTask InitializeAsync() => billing = await BillingHost.StartAsync(Start, new Dictionary<string, string?>
    {
        ["Billing:Plans:Growth:PricePerMillionTrainedTokensUsd"] = "4",
    });

    public ValueTask DisposeAsync() => billing.DisposeAsync();

    [Fact]
    public async Task A_completed_fine_tune_is_charged_for_its_trained_tokens_once_and_shows_in_usage_and_billing()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("fine-tune-pricing", "growth");
        await billing.TopUpAsync(workspaceId, 1m, "start");
        var meter = billing.Host.Services.GetRequiredService<Meter>();
        var completed = new TrainingCompleted(workspaceId, "job_priced", billing.Clock.GetUtcNow(), "job_priced", "llmtune/tiny",
            "file:///nowhere/adapter.gguf", "lora", TrainedTokens: 250_000);

        Assert.True(await meter.ChargeAsync(completed, CancellationToken.None));
        // A redelivery (same job) charges nothing.
        Assert.False(await meter.ChargeAsync(completed with { CorrelationId = "another-message" }, CancellationToken.None));

        var billed = await QuotaAndRateLimitTests.Billing(client);
        Assert.Equal(4m, billed.GetProperty("limits").GetProperty("pricePerMillionTrainedTokensUsd").GetDecimal());
        // 250,000 tokens at $4 per million: the whole dollar, so the prepaid balance is used up.
        Assert.Equal(0m, billed.GetProperty("balanceUsd").GetDecimal());
        await billing.AdmissionSeesCreditsAsync(workspaceId, false);
        await (await client.GetAsync("/v1/keys")).AssertError(HttpStatusCode.PaymentRequired, "insufficient_credits");

        var usage = await (await client.GetAsync("/v1/usage?from=2026-07-01&to=2026-07-31&groupBy=model")).Json();
        var row = Assert.Single(usage.GetProperty("data").EnumerateArray());
        Assert.Equal("llmtune/tiny", row.GetProperty("model").GetString());
        Assert.Equal(250_000, row.GetProperty("trainedTokens").GetInt64());
        // A fine-tune is not an inference request.
        Assert.Equal(0, row.GetProperty("requests").GetInt64());
        Assert.Equal(1m, usage.GetProperty("total").GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task Sandbox_fine_tunes_cost_nothing_but_their_trained_tokens_are_counted()
    {
        var (workspaceId, client) = await billing.WorkspaceAsync("fine-tune-free", "sandbox");
        var meter = billing.Host.Services.GetRequiredService<Meter>();
        Assert.True(await meter.ChargeAsync(new TrainingCompleted(workspaceId, "job_free", billing.Clock.GetUtcNow(), "job_free", "llmtune/tiny",
            "file:///nowhere/adapter.gguf", "lora", TrainedTokens: 1234), CancellationToken.None));

        var total = (await (await client.GetAsync("/v1/usage?from=2026-07-01&to=2026-07-31")).Json()).GetProperty("total");
        Assert.Equal(1234, total.GetProperty("trainedTokens").GetInt64());
        Assert.Equal(0m, total.GetProperty("costUsd").GetDecimal());
    }
}
