namespace LLMTune.Engine.Gguf;

/// <summary>The bytes are not a GGUF file this reader understands.</summary>
public sealed class GgufFormatException(string message) : Exception(message);
