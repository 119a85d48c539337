"""Config: where the config library lives, composing it, checking it, building from it."""
