using System.Runtime.CompilerServices;

// The training tests check the packer and the schedule directly.
[assembly: InternalsVisibleTo("LLMTune.Engine.Tests")]
