"""Quickstart projects for `trainer create` (data files; see sweeptrainer.create)."""
