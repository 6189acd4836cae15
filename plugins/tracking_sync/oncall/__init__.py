"""On-call: which failures retry, the one-line failure summary and notifier, the late-run alert."""
