"""Fault-injection runs: workers killed, broker and store restarted, inputs duplicated and broken."""
