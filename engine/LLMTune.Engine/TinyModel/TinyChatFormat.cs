using System.Text;
using LLMTune.Engine.Tokenization;

namespace LLMTune.Engine.TinyModel;

/// <summary>The ChatML layout the tiny model is trained on and the template stored in its GGUF.</summary>
public static class TinyChatFormat
{
    /// <summary>
    /// ChatML as a Jinja template for <c>tokenizer.chat_template</c>; llama.cpp recognises it as "chatml" by its
    /// <c>&lt;|im_start|&gt;</c> marker and renders exactly what <see cref="Prompt"/> builds.
    /// </summary>
    public const string JinjaTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>The text the model sees before it answers: optional system turn, the user turn, the assistant header.</summary>
    public static string Prompt(string? system, string user)
    {
        var builder = new StringBuilder();
        if (system is not null)
        {
            AppendTurn(builder, "system", system);
        }
        AppendTurn(builder, "user", user);
        builder.Append(BpeVocabulary.ImStartToken).Append("assistant\n");
        return builder.ToString();
    }

    /// <summary>What the model is trained to produce after <see cref="Prompt"/>: the answer and the end-of-turn token.</summary>
    public static string Completion(string answer) => answer + BpeVocabulary.ImEndToken;

    private static void AppendTurn(StringBuilder builder, string role, string content) =>
        builder.Append(BpeVocabulary.ImStartToken).Append(role).Append('\n').Append(content).Append(BpeVocabulary.ImEndToken).Append('\n');
}
