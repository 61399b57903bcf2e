using System.ClientModel;
using System.Net.Http.Json;
using System.Text;
using LLMTune.Inference.Tests.Support;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace LLMTune.Inference.Tests;

/// <summary>The official OpenAI .NET SDK, unchanged, pointed at the host.</summary>
public sealed class OpenAiSdkTests(InferenceHost fixture)
{
    private OpenAIClient Client(string? key = null) =>
        new(new ApiKeyCredential(key ?? fixture.Key), new OpenAIClientOptions { Endpoint = new Uri(fixture.Host.Address, "v1") });

    [Fact]
    public async Task Chat_completion()
    {
        var chat = Client().GetChatClient(InferenceHost.Small);
        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Say hello.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0 });

        Assert.Equal(InferenceHost.Small, completion.Model);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Contains(completion.FinishReason, new[] { ChatFinishReason.Stop, ChatFinishReason.Length });
        Assert.InRange(completion.Usage.OutputTokenCount, 1, 8);
        Assert.True(completion.Usage.InputTokenCount > 5);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        Assert.NotNull(completion.Content[0].Text);
    }

    [Fact]
    public async Task Streamed_chat_completion_with_usage()
    {
        var chat = Client().GetChatClient(InferenceHost.Small);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0 };
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        var updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Tell me a story.")], options))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
            Assert.Equal(InferenceHost.Small, update.Model);
        }

        Assert.NotNull(usage);
        Assert.NotNull(finish);
        Assert.True(updates >= 3, $"only {updates} updates");
        Assert.InRange(usage!.OutputTokenCount, 1, 10);

        // Streaming and not streaming give the same greedy text.
        ChatCompletion whole = await chat.CompleteChatAsync([new UserChatMessage("Tell me a story.")], options);
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task Completions()
    {
        // OpenAI 2.15 keeps its legacy completions client internal, so the call goes through the SDK's own pipeline
        // (its authentication, headers and error classification) to /v1/completions.
        var pipeline = Client().GetChatClient(InferenceHost.Small).Pipeline;
        using var message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(fixture.Host.Address, "v1/completions");
        message.Request.Headers.Set("Authorization", $"Bearer {fixture.Key}");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            model = InferenceHost.Small,
            prompt = "Once upon a time",
            max_tokens = 6,
            temperature = 0,
        }));
        await pipeline.SendAsync(message);
        Assert.False(message.Response!.IsError, message.Response.Content.ToString());
        var result = ClientResult.FromResponse(message.Response);
        var json = System.Text.Json.JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        Assert.Equal(InferenceHost.Small, json.GetProperty("model").GetString());
        var choice = json.GetProperty("choices")[0];
        Assert.Equal(System.Text.Json.JsonValueKind.String, choice.GetProperty("text").ValueKind);
        Assert.InRange(json.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 6);

        // The same continuation as the native endpoint gives for a model without a chat template.
        using var client = fixture.Client();
        var native = await (await client.PostAsJsonAsync($"/v1/models/{InferenceHost.Small}/inference", new { prompt = "Once upon a time", temperature = 0, maxTokens = 6 })).Json();
        Assert.Equal(native.GetProperty("text").GetString(), choice.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Models_list_and_retrieve()
    {
        var models = Client().GetOpenAIModelClient();
        OpenAIModelCollection list = await models.GetModelsAsync();
        Assert.Contains(list, m => m.Id == InferenceHost.Small);
        Assert.Contains(list, m => m.Id == "llmtune/tiny");
        Assert.All(list, m => Assert.False(string.IsNullOrEmpty(m.OwnedBy)));

        OpenAIModel tiny = await models.GetModelAsync("llmtune/tiny");
        Assert.Equal("llmtune/tiny", tiny.Id);
        Assert.Equal("llmtune", tiny.OwnedBy);
    }

    [Fact]
    public async Task Sdk_raises_its_error_type_for_401_and_404()
    {
        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client("sk_live_not_a_real_key").GetChatClient(InferenceHost.Small).CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, unauthorized.Status);

        var notFound = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client().GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, notFound.Status);
        Assert.Contains("model_not_found", notFound.Message);

        var missingModel = await Assert.ThrowsAsync<ClientResultException>(() => Client().GetOpenAIModelClient().GetModelAsync("no/such-model"));
        Assert.Equal(404, missingModel.Status);
    }
}
