"""Extract: the source's rows (one partition of the run's slice) -> zstd CSV parts in the scratch area."""
