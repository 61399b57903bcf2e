using System.Net;
using System.Net.Http.Json;
using LLMTune.Platform.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace LLMTune.Billing.Tests;

/// <summary>The plan's fine-tune queue is stamped on the job by admission's claim, so the trainer never reads billing's data.</summary>
public sealed class FineTunePriorityTests
{
    /// <summary>The one field of finetune's job document this test reads.</summary>
    private sealed class QueuedJob : IDocument
    {
        public string Id { get; set; } = "";
        public long Version { get; set; }
        public bool Priority { get; set; }
    }

    [Fact]
    public async Task Growth_jobs_go_in_the_priority_queue_and_sandbox_jobs_do_not()
    {
        await using var billing = await BillingHost.StartAsync(new DateTimeOffset(2026, 8, 3, 10, 0, 0, TimeSpan.Zero));
        var (_, sandbox) = await billing.WorkspaceAsync("ft-sandbox");
        var (growthId, growth) = await billing.WorkspaceAsync("ft-growth", "growth");
        await billing.TopUpAsync(growthId, 1m, "ft-start");

        var jobs = billing.Host.Services.GetRequiredService<IDocumentStore>().Collection<QueuedJob>("finetune_jobs");
        async Task<bool> PriorityOf(HttpClient client)
        {
            var file = await QuotaAndRateLimitTests.UploadAsync(client);
            var created = await (await client.PostAsJsonAsync("/v1/fine-tune", new { baseModel = "llmtune/tiny", dataset = file })).Json(HttpStatusCode.Created);
            return (await jobs.GetAsync(created.GetProperty("id").GetString()!, CancellationToken.None))!.Priority;
        }

        Assert.False(await PriorityOf(sandbox));
        Assert.True(await PriorityOf(growth));
    }
}
