using System.Text;
using LLMTune.Contracts;
using LLMTune.Finetune.Features.Artifacts;
using LLMTune.Platform.Artifacts;
using MassTransit;

namespace LLMTune.Finetune.Features.Files;

/// <summary>
/// Answers <see cref="ReadFile"/> from this service's files: the owner decides what another service may read (the
/// workspace's own file, of the purpose asked for, within the size asked for) and hands over the content.
/// </summary>
public sealed class ReadFileConsumer(FileStore files, IArtifactStore artifacts) : IConsumer<ReadFile>
{
    public async Task Consume(ConsumeContext<ReadFile> context)
    {
        var request = context.Message;
        var ct = context.CancellationToken;
        if (await files.FindAsync(request.WorkspaceId, request.FileId, ct) is not { } file)
        {
            await context.RespondAsync(new FileRead(request.FileId, false, null, 0, null, null));
            return;
        }

        string? problem = file.Purpose != request.Purpose ? "wrong_purpose" : file.Bytes > request.MaxBytes ? "file_too_large" : null;
        string? content = null;
        if (problem is null)
        {
            await using var stream = await artifacts.OpenReadAsync(ArtifactKeys.File(file.Id), ct);
            if (stream is null)
            {
                await context.RespondAsync(new FileRead(request.FileId, false, null, 0, null, null));
                return;
            }

            using var reader = new StreamReader(stream, new UTF8Encoding(false, true));
            try
            {
                content = await reader.ReadToEndAsync(ct);
            }
            catch (DecoderFallbackException)
            {
                problem = "not_utf8";
            }
        }

        await context.RespondAsync(new FileRead(file.Id, true, file.Purpose, file.Bytes, problem, content));
    }
}
