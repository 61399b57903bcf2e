using System.ClientModel;
using System.Text;
using System.Text.Json;
using LLMTune.Inference.Tests.Support;
using OpenAI;
using OpenAI.Chat;

namespace LLMTune.Inference.Tests;

/// <summary>The official OpenAI .NET SDK's structured outputs and tool calls against a local model.</summary>
public sealed class OpenAiSdkStructuredOutputTests(InferenceHost fixture)
{
    private const string Parameters = """
        {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"], "additionalProperties": false}
        """;

    private ChatClient Chat() =>
        new OpenAIClient(new ApiKeyCredential(fixture.Key), new OpenAIClientOptions { Endpoint = new Uri(fixture.Host.Address, "v1") }).GetChatClient("llmtune/tiny");

    private static ChatTool Weather => ChatTool.CreateFunctionTool("get_weather", "Weather in a city", BinaryData.FromString(Parameters), functionSchemaIsStrict: true);

    [Fact]
    public async Task Json_schema_response_format()
    {
        ChatCompletion completion = await Chat().CompleteChatAsync(
            [new UserChatMessage("Add 3 and 4.")],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("weather", BinaryData.FromString(Parameters), jsonSchemaIsStrict: true) });

        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        AssertWeather(completion.Content[0].Text);
    }

    [Fact]
    public async Task Named_tool_choice_and_the_tool_result_in_the_next_turn()
    {
        var options = new ChatCompletionOptions { Tools = { Weather }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather") };
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];
        ChatCompletion completion = await Chat().CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        AssertWeather(call.FunctionArguments.ToString());

        messages.Add(new AssistantChatMessage(completion));
        messages.Add(new ToolChatMessage(call.Id, "3 degrees"));
        ChatCompletion next = await Chat().CompleteChatAsync(messages, new ChatCompletionOptions { Tools = { Weather }, ToolChoice = ChatToolChoice.CreateNoneChoice(), MaxOutputTokenCount = 4 });
        Assert.Empty(next.ToolCalls);
        Assert.NotNull(next.Content[0].Text);
    }

    [Fact]
    public async Task Streamed_named_tool_call()
    {
        var options = new ChatCompletionOptions { Tools = { Weather }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather") };
        var arguments = new StringBuilder();
        string? name = null;
        ChatFinishReason? finish = null;
        await foreach (var update in Chat().CompleteChatStreamingAsync([new UserChatMessage("Weather in Oslo?")], options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                name ??= part.FunctionName;
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal("get_weather", name);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        AssertWeather(arguments.ToString());
    }

    private static void AssertWeather(string json)
    {
        var value = JsonDocument.Parse(json).RootElement;
        Assert.Equal(2, value.EnumerateObject().Count());
        Assert.InRange(value.GetProperty("city").GetString()!.Length, 0, 8);
        Assert.Contains(value.GetProperty("unit").GetString(), new[] { "c", "f" });
    }
}
