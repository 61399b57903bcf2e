using System.Linq.Expressions;
using LLMTune.Platform.Storage;

namespace LLMTune.Billing.Features.Shared;

/// <summary>
/// A local copy of another service's state, kept from its events: an event changes the copy only when it is newer
/// (its sequence above the copy's), so redeliveries and out-of-order arrivals leave the newest state.
/// </summary>
internal static class SequencedCopy
{
    /// <param name="olderCopy">Matches the copy when its sequence is below the event's.</param>
    public static async Task KeepNewestAsync<T>(
        IDocumentCollection<T> copies, string id, Expression<Func<T, bool>> olderCopy, Action<T> apply, Func<T> create, CancellationToken ct)
        where T : class, IDocument
    {
        while (true)
        {
            if (await copies.FindOneAndUpdateAsync(olderCopy, apply, null, ct) is not null || await copies.GetAsync(id, ct) is not null)
            {
                return;
            }

            try
            {
                await copies.InsertAsync(create(), ct);
                return;
            }
            catch (DuplicateDocumentException)
            {
                // Created by a concurrent event: compare with it on the next pass.
            }
        }
    }
}
