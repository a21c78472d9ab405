"""Exceptions that the CLI turns into one-line messages with exit code 2.

Library code raises these for bad *user input* (a config value, a missing or
corrupt data file); programming errors stay ordinary exceptions with tracebacks.
"""


class TrainlabError(Exception):
    """Base class: the message is one line that names the fix."""


class ConfigError(TrainlabError, ValueError):
    """A config key or value is unknown, of the wrong type or out of range."""


class DataError(TrainlabError):
    """Data files are missing, corrupt or inconsistent."""
