namespace LLMTune.Contracts;
