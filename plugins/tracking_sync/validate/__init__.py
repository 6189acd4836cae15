"""Validate: the parity checks on both engines, compared by key, with the cause and the repair."""
