"""Tools around the pipeline: the demo, the contract files generator."""
