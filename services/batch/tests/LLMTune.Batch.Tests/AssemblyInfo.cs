// The hosts share two busy cores; test classes run one at a time, each on its own host.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
