namespace LLMTune.Contracts;

/// <summary>
/// The answer to <see cref="ReadFile"/>: <paramref name="Found"/> is false for an unknown file or another workspace's;
/// <paramref name="Problem"/> names why a found file was not read (<c>wrong_purpose</c>, <c>file_too_large</c>);
/// otherwise <paramref name="Content"/> is the file as UTF-8 text.
/// </summary>
public sealed record FileRead(string FileId, bool Found, string? Purpose, long Bytes, string? Problem, string? Content);
