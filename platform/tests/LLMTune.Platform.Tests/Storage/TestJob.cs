using LLMTune.Platform.Storage;

namespace LLMTune.Platform.Tests.Storage;

public enum TestJobStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// <summary>A document touching every field type the services store.</summary>
public sealed class TestJob : IDocument
{
    public string Id { get; init; } = "";

    public long Version { get; set; }

    public string Name { get; set; } = "";

    public string? Owner { get; set; }

    public TestJobStatus Status { get; set; }

    public int Priority { get; set; }

    public long Counter { get; set; }

    public decimal Credits { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? ExpiresAt { get; set; }

    public DateTime? LeaseUntil { get; set; }

    public string? ClaimedBy { get; set; }

    public List<string> Tags { get; set; } = [];

    public TestJobStats Stats { get; set; } = new();
}

public sealed class TestJobStats
{
    public long Tokens { get; set; }
}
