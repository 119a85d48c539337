"""The sweep layer: a command's arguments, its plan (every run composed and checked once),
its launch through Hydra's sweeper and launcher plugins, and its outcomes."""
