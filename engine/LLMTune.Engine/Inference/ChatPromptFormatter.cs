using System.Text;
using LLama;

namespace LLMTune.Engine.Inference;

/// <summary>
/// Renders chat messages with llama.cpp's chat-template support (it recognises the common templates — ChatML,
/// Llama 2/3, Mistral, Gemma, Phi, … — from the model's <c>tokenizer.chat_template</c>), using ChatML when the
/// model has no template.
/// </summary>
public static class ChatPromptFormatter
{
    public const string ChatMl = "chatml";

    /// <summary>Renders <paramref name="messages"/> and opens the assistant's turn.</summary>
    /// <param name="template">The model's Jinja template or a llama.cpp template name; null means ChatML.</param>
    /// <exception cref="UnsupportedChatTemplateException">llama.cpp does not recognise the template.</exception>
    public static string Format(string? template, IReadOnlyList<ChatMessage> messages)
    {
        var rendered = new LLamaTemplate(string.IsNullOrEmpty(template) ? ChatMl : template) { AddAssistant = true };
        foreach (var message in messages)
        {
            rendered.Add(RoleName(message.Role), message.Content);
        }

        try
        {
            return Encoding.UTF8.GetString(rendered.Apply());
        }
        catch (LLama.Exceptions.MissingTemplateException e)
        {
            throw new UnsupportedChatTemplateException(template ?? ChatMl, e);
        }
    }

    /// <summary>Like <see cref="Format"/>, but renders ChatML when llama.cpp does not recognise the template.</summary>
    public static string FormatOrChatMl(string? template, IReadOnlyList<ChatMessage> messages, out bool usedFallback)
    {
        try
        {
            usedFallback = false;
            return Format(template, messages);
        }
        catch (UnsupportedChatTemplateException)
        {
            usedFallback = true;
            return Format(ChatMl, messages);
        }
    }

    public static string RoleName(ChatRole role) => role switch
    {
        ChatRole.System => "system",
        ChatRole.User => "user",
        ChatRole.Assistant => "assistant",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, null),
    };
}
