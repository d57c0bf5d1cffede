"""The platform's internal API: what instance runtimes call, on its own listener."""
