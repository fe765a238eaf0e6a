"""The benchmark: our pipeline against a naive consumer and the stack's own ceilings, in one run."""
