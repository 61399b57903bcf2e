using System.Collections.Concurrent;
using LLMTune.Inference.Features.Models;
using Microsoft.Extensions.Options;

namespace LLMTune.Inference.Features.BatchItems;

/// <summary>
/// How many batch items decode at once on each local model: every continuous-batching slot it has
/// (<c>MaxConcurrency</c>) but <c>Inference:BatchReservedSlots</c>, which stay free for synchronous requests, so a big
/// batch fills the model's batch without making interactive traffic queue behind it.
/// </summary>
public sealed class BatchSlots(IOptions<InferenceOptions> options)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    /// <summary>Waits for a batch slot on the model; null (no limit here) for upstream models, whose server batches.</summary>
    public async Task<IDisposable?> EnterAsync(ServedModel model, CancellationToken ct)
    {
        if (model is not LocalServedModel local)
        {
            return null;
        }

        var gate = _gates.GetOrAdd(local.EngineId, _ =>
        {
            var slots = Math.Max(1, local.Settings.MaxConcurrency - options.Value.BatchReservedSlots);
            return new SemaphoreSlim(slots, slots);
        });
        await gate.WaitAsync(ct);
        return new Slot(gate);
    }

    private sealed class Slot(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }
}
