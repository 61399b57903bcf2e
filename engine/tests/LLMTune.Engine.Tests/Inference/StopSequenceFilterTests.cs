using System.Text;
using LLMTune.Engine.Inference;

namespace LLMTune.Engine.Tests.Inference;

public sealed class StopSequenceFilterTests
{
    [Fact]
    public void A_stop_sequence_split_across_tokens_is_never_released()
    {
        var filter = new StopSequenceFilter(["END"]);
        var released = new StringBuilder();
        foreach (var piece in new[] { "hello E", "N", "D and more" })
        {
            released.Append(filter.Push(Encoding.UTF8.GetBytes(piece)));
        }

        Assert.True(filter.Stopped);
        Assert.Equal("hello ", released.ToString());
        Assert.Equal("hello ", filter.Text);
    }

    [Fact]
    public void Text_that_only_looked_like_a_stop_prefix_is_released_once_it_diverges()
    {
        var filter = new StopSequenceFilter(["END"]);

        Assert.Equal("a", filter.Push("aE"u8));
        Assert.Equal("", filter.Push("N"u8));
        Assert.Equal("EN!", filter.Push("!"u8));
        Assert.False(filter.Stopped);
        Assert.Equal("aEN!", filter.Text);
    }

    [Fact]
    public void Held_text_is_flushed_when_generation_ends_for_another_reason()
    {
        var filter = new StopSequenceFilter(["\n\n"]);

        Assert.Equal("line", filter.Push("line\n"u8));
        Assert.Equal("\n", filter.Flush());
        Assert.Equal("line\n", filter.Text);
    }

    [Fact]
    public void A_character_split_across_tokens_is_released_whole()
    {
        var bytes = Encoding.UTF8.GetBytes("é🙂");
        var filter = new StopSequenceFilter([]);

        Assert.Equal("", filter.Push(bytes.AsSpan(0, 1)));
        Assert.Equal("é", filter.Push(bytes.AsSpan(1, 2)));
        Assert.Equal("", filter.Push(bytes.AsSpan(3, 2)));
        Assert.Equal("🙂", filter.Push(bytes.AsSpan(5)));
    }

    [Fact]
    public void The_earliest_of_several_stop_sequences_wins()
    {
        var filter = new StopSequenceFilter(["world", "lo w"]);

        Assert.Equal("hel", filter.Push("hello world"u8));
        Assert.True(filter.Stopped);
        Assert.Equal("", filter.Push("more"u8));
    }
}
