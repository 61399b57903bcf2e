// Training tests share two CPU cores; running test classes one at a time keeps each within its time budget.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
