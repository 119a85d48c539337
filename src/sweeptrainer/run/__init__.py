"""One run: its plan (pure reads of its folder), its lifecycle (check -> plan -> build ->
lock -> fit -> test -> write), its outcome, and the job class Hydra's launchers call."""
