namespace LLMTune.Testing;

/// <summary>Polls for an eventually-consistent condition instead of sleeping a fixed time.</summary>
public static class Eventually
{
    public static async Task<T> Get<T>(Func<Task<T?>> probe, Func<T?, bool> done, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value!;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what ?? "a condition"}; last value: {value}");
            }

            await Task.Delay(delay);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 250));
        }
    }

    public static Task True(Func<Task<bool>> probe, TimeSpan? timeout = null, string? what = null) =>
        Get(probe, ok => ok, timeout, what);

    public static Task True(Func<bool> probe, TimeSpan? timeout = null, string? what = null) =>
        Get(() => Task.FromResult(probe()), ok => ok, timeout, what);
}
