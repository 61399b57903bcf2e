using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Contracts;

namespace LLMTune.Webhooks;

/// <summary>
/// One event as receivers see it. <see cref="Id"/> is the <c>webhook-id</c>: derived from the event's type and subject,
/// so the same bus message consumed twice (or republished) yields the same id, and one delivery per destination.
/// </summary>
public sealed record WebhookEvent(string Id, string Type, string WorkspaceId, string Subject, DateTime OccurredAt, string Data)
{
    public const string TrainingStarted = "training.started";
    public const string TrainingCompleted = "training.completed";
    public const string TrainingFailed = "training.failed";
    public const string ModelDeployed = "model.deployed";
    public const string BatchCompleted = "batch.completed";
    public const string Test = "webhook.test";

    /// <summary>The events an endpoint can subscribe to.</summary>
    public static readonly string[] Types = [TrainingStarted, TrainingCompleted, TrainingFailed, ModelDeployed, BatchCompleted];

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static WebhookEvent Create(string type, IWorkspaceEvent source, string subject, object data) =>
        new(DeterministicId(type, subject), type, source.WorkspaceId, subject, source.Timestamp.UtcDateTime, JsonSerializer.Serialize(data, Json));

    public static WebhookEvent From(TrainingStarted e) => Create(TrainingStarted, e, e.JobId,
        new { jobId = e.JobId, baseModel = e.BaseModel, status = "training", totalEpochs = e.TotalEpochs });

    public static WebhookEvent From(TrainingCompleted e) => Create(TrainingCompleted, e, e.JobId,
        new { jobId = e.JobId, baseModel = e.BaseModel, status = "completed", artifact = ArtifactName(e.ArtifactUri), artifactKind = e.ArtifactKind });

    public static WebhookEvent From(TrainingFailed e) => Create(TrainingFailed, e, e.JobId,
        new { jobId = e.JobId, baseModel = e.BaseModel, status = "failed", error = new { code = e.Code, message = e.Reason } });

    public static WebhookEvent From(ModelDeployed e) => Create(ModelDeployed, e, e.JobId ?? e.ModelId,
        new { jobId = e.JobId, baseModel = e.BaseModel, model = e.ModelId });

    public static WebhookEvent From(BatchCompleted e) => Create(BatchCompleted, e, e.BatchId,
        new { batchId = e.BatchId, modelId = e.ModelId, status = "completed", counts = new { total = e.Succeeded + e.Failed, succeeded = e.Succeeded, failed = e.Failed } });

    /// <summary>A test event for one endpoint: a fresh id each time.</summary>
    public static WebhookEvent ForTest(string workspaceId, string endpointId, DateTime now) =>
        new("msg_" + Guid.NewGuid().ToString("N"), Test, workspaceId, endpointId, now,
            JsonSerializer.Serialize(new { endpointId, message = "This is a test event from LLMTune." }, Json));

    /// <summary>The body receivers get (the seed's envelope), with the time of this attempt.</summary>
    public static string Envelope(string type, string data, DateTime deliveredAt)
    {
        var envelope = new JsonObject
        {
            ["event"] = type,
            ["data"] = JsonNode.Parse(data),
            ["deliveredAt"] = deliveredAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        };
        return envelope.ToJsonString();
    }

    /// <summary>The artifact's file name: where it is stored inside LLMTune is not the receiver's business.</summary>
    private static string ArtifactName(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var u) ? Path.GetFileName(u.AbsolutePath) : Path.GetFileName(uri);

    private static string DeterministicId(string type, string subject) =>
        "msg_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{type}|{subject}")))[..32];
}
