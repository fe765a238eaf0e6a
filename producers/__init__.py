"""The publishing side: typed publishers for every input event, and the demo's generators."""
