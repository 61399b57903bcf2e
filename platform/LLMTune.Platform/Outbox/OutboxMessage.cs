using LLMTune.Platform.Storage;

namespace LLMTune.Platform.Outbox;

/// <summary>An event recorded with the state change it announces, published by the <see cref="OutboxDispatcher"/>.</summary>
public sealed class OutboxMessage : IDocument
{
    public const string Collection = "outbox";

    /// <summary>The MassTransit message id ("N" format): consumers drop a second delivery of it.</summary>
    public string Id { get; set; } = "";

    public long Version { get; set; }

    /// <summary>The contract type, "Namespace.Type, Assembly" (no version, so it survives upgrades).</summary>
    public string MessageType { get; set; } = "";

    /// <summary>The event as JSON.</summary>
    public string Body { get; set; } = "";

    public DateTime CreatedAt { get; set; }

    /// <summary>
    /// When the dispatcher may (next) try to publish it: now for a new event, later after a failure or while a
    /// dispatcher holds it; <see cref="DateTime.MaxValue"/> once sent, so the due query never scans sent ones.
    /// </summary>
    public DateTime DueAt { get; set; }

    public int Attempts { get; set; }

    public string? LastError { get; set; }

    /// <summary>When it was published; sent messages are deleted <c>Outbox:SentRetention</c> later.</summary>
    public DateTime? SentAt { get; set; }
}
