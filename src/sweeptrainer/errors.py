"""The two kinds of failure a user sees, and the exit codes they map to."""


class ConfigError(Exception):
    """Something the user gave is wrong (config, override, file): exit code 2, no traceback.

    The message names the config key or file and what was expected.
    """

    exit_code = 2


class TrainingError(Exception):
    """Training itself went wrong (e.g. the loss became NaN): the run is marked failed."""

    exit_code = 1
