"""What `status`, the `sync` summary and the STATUS line say: per-file state, counts, costs."""
