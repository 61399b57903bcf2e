using System.Text;
using System.Text.Json;
using LLMTune.Batch.Features.Batches;
using LLMTune.Platform.Errors;

namespace LLMTune.Batch.Features.OpenAiBatches;

/// <summary>
/// An OpenAI batch's output and error files. They are views of the batch's own items (this service's data), written
/// when asked for, so they hold exactly the recorded results; their ids (<c>file_batch_…_output</c>, <c>…_errors</c>)
/// are routed to this service under <c>/v1/files</c>, while uploads stay with their owner.
/// </summary>
public static class OpenAiBatchFiles
{
    public const string IdPrefix = "file_";
    private const string OutputSuffix = "_output";
    private const string ErrorsSuffix = "_errors";

    public static string OutputFileId(string batchId) => IdPrefix + batchId + OutputSuffix;

    public static string ErrorFileId(string batchId) => IdPrefix + batchId + ErrorsSuffix;

    /// <summary>The batch id and which file; null for any other id.</summary>
    public static (string BatchId, bool Errors)? Parse(string fileId) =>
        fileId.StartsWith(IdPrefix + "batch_", StringComparison.Ordinal) && fileId.EndsWith(OutputSuffix, StringComparison.Ordinal)
            ? (fileId[IdPrefix.Length..^OutputSuffix.Length], false)
            : fileId.StartsWith(IdPrefix + "batch_", StringComparison.Ordinal) && fileId.EndsWith(ErrorsSuffix, StringComparison.Ordinal)
                ? (fileId[IdPrefix.Length..^ErrorsSuffix.Length], true)
                : null;

    /// <summary>Succeeded items (output) or failed ones (errors), one line each in input order.</summary>
    public static byte[] Content(IEnumerable<BatchItem> items, bool errors)
    {
        var text = new StringBuilder();
        foreach (var item in items.Where(i => i.Status == (errors ? BatchItemStatus.Failed : BatchItemStatus.Succeeded)))
        {
            text.Append(JsonSerializer.Serialize(Line(item))).Append('\n');
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static OpenAiOutputLine Line(BatchItem item)
    {
        var id = "batch_req_" + item.Id;
        if (item.Status == BatchItemStatus.Succeeded)
        {
            using var body = JsonDocument.Parse(item.ResponseBody ?? "{}");
            return new OpenAiOutputLine(id, item.RequestId, new OpenAiOutputResponse(200, item.Id, body.RootElement.Clone()), null);
        }

        if (item.ErrorCode == "item_timeout")
        {
            return new OpenAiOutputLine(id, item.RequestId, null, new OpenAiLineError(item.ErrorCode, item.ErrorMessage ?? "The request did not complete."));
        }

        // The error the endpoint would have answered, in the API's error shape.
        var status = item.ErrorStatus ?? 500;
        var error = JsonSerializer.SerializeToElement(new
        {
            error = new { message = item.ErrorMessage ?? "The request failed.", type = ApiErrors.TypeFor(status), param = item.ErrorParam, code = item.ErrorCode },
        });
        return new OpenAiOutputLine(id, item.RequestId, new OpenAiOutputResponse(status, item.Id, error), null);
    }
}
