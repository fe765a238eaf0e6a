"""The FastStream worker: decode and dead-letter input, apply the lifecycle, publish outputs."""
