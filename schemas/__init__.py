"""Wire and storage models, and every name of the contract (topics, types, statuses, reasons)."""
