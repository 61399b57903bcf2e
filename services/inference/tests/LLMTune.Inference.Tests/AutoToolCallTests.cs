using System.Text.Json;
using LLMTune.Inference.Features.OpenAiCompatible;

namespace LLMTune.Inference.Tests;

/// <summary>
/// What <c>tool_choice: "auto"</c> guarantees on local models: a <c>&lt;tool_call&gt;</c> block the model writes becomes
/// a call only when it names a listed function and its arguments validate against that function's schema; anything else
/// stays content. (The bundled model never writes the format, so the answers are given as text here.)
/// </summary>
public sealed class AutoToolCallTests
{
    private static ToolPlan Plan() => ToolPlan.From(JsonSerializer.Deserialize<ChatCompletionRequest>("""
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto", "parallel_tool_calls": true,
         "tools": [
           {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
             "properties": {"city": {"type": "string", "pattern": "^[A-Z]"}, "days": {"type": "integer", "minimum": 1}},
             "required": ["city"], "additionalProperties": false}}},
           {"type": "function", "function": {"name": "now"}}]}
        """, OpenAiJson.Options)!)!;

    [Fact]
    public void A_call_whose_arguments_validate_becomes_a_tool_call_and_the_rest_stays_content()
    {
        var (content, calls) = Plan().Parse("Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}\n</tool_call>");

        Assert.Equal("Let me look.", content);
        var call = Assert.Single(calls);
        Assert.Equal("get_weather", call.Function.Name);
        Assert.Equal("""{"city": "Oslo", "days": 2}""", call.Function.Arguments);
    }

    [Theory]
    [InlineData("""{"name": "get_weather", "arguments": {"days": 2}}""")] // required city missing
    [InlineData("""{"name": "get_weather", "arguments": {"city": 5}}""")] // wrong type
    [InlineData("""{"name": "get_weather", "arguments": {"city": "oslo"}}""")] // pattern
    [InlineData("""{"name": "get_weather", "arguments": {"city": "Oslo", "days": 0}}""")] // minimum
    [InlineData("""{"name": "get_weather", "arguments": {"city": "Oslo", "extra": true}}""")] // additionalProperties
    [InlineData("""{"name": "unknown", "arguments": {}}""")]
    [InlineData("""{"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}""")] // arguments must be an object
    [InlineData("""{"name": "get_weather", "arguments": {"city": "Oslo"}""")] // not JSON
    public void A_call_whose_arguments_do_not_validate_stays_text(string call)
    {
        var text = $"<tool_call>\n{call}\n</tool_call>";

        var (content, calls) = Plan().Parse(text);

        Assert.Empty(calls);
        Assert.Equal(text, content);
    }

    [Fact]
    public void Valid_and_invalid_calls_in_one_answer_give_only_the_valid_ones_as_calls()
    {
        var (content, calls) = Plan().Parse(
            "<tool_call>{\"name\": \"now\"}</tool_call>\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": 1}}</tool_call>");

        Assert.Equal("now", Assert.Single(calls).Function.Name);
        Assert.Equal("""<tool_call>{"name": "get_weather", "arguments": {"city": 1}}</tool_call>""", content);
    }
}
