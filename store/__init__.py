"""MongoDB access: client, indexes, load, compare-and-set save with outbox, queries."""
