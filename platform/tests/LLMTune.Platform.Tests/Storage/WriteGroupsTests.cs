using LLMTune.Platform.Storage;

namespace LLMTune.Platform.Tests.Storage;

public sealed class WriteGroupsTests
{
    [Fact]
    public void Without_a_window_an_item_queued_alone_is_written_at_once_on_its_callers_thread()
    {
        var groups = new List<int[]>();
        var writes = new WriteGroups<int>(group => Record(groups, group), maxGroup: 100);

        writes.Add(1);

        Assert.Equal([[1]], groups);
    }

    [Fact]
    public async Task With_a_window_items_queued_one_after_another_share_one_write()
    {
        var groups = new List<int[]>();
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writes = new WriteGroups<int>(group =>
        {
            Record(groups, group);
            written.TrySetResult();
            return Task.CompletedTask;
        }, maxGroup: 100, window: TimeSpan.FromSeconds(1));

        for (var i = 0; i < 5; i++)
        {
            writes.Add(i);
        }

        Assert.Empty(groups); // the window is still open: nothing written on the callers' thread
        await written.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([[0, 1, 2, 3, 4]], groups);
    }

    [Fact]
    public async Task With_a_window_a_group_never_exceeds_its_limit()
    {
        var groups = new List<int[]>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writes = new WriteGroups<int>(group =>
        {
            Record(groups, group);
            if (groups.Sum(g => g.Length) == 7)
            {
                all.TrySetResult();
            }

            return Task.CompletedTask;
        }, maxGroup: 3, window: TimeSpan.FromMilliseconds(50));

        for (var i = 0; i < 7; i++)
        {
            writes.Add(i);
        }

        await all.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([[0, 1, 2], [3, 4, 5], [6]], groups);
    }

    private static Task Record(List<int[]> groups, List<int> group)
    {
        lock (groups)
        {
            groups.Add([.. group]);
        }

        return Task.CompletedTask;
    }
}
