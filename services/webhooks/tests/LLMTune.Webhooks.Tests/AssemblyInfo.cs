// Each test starts the whole host; on two shared cores one at a time keeps them within their time limits.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
