using LLMTune.Inference.Tests.Support;

// One host for the whole assembly; tests run one at a time because they share it (and two busy cores).
[assembly: AssemblyFixture(typeof(InferenceHost))]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
