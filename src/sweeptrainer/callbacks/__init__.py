"""Callback hooks: the hook table, the per-trainer dispatcher, and built-in callbacks."""
