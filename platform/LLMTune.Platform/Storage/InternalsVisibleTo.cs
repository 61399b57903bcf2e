using System.Runtime.CompilerServices;

// The Mongo translation tests render filters without a server.
[assembly: InternalsVisibleTo("LLMTune.Platform.Tests")]
