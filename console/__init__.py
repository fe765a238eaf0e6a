"""The operator console: a web application on the same store and broker as the worker."""
