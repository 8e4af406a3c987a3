"""Errors a user can act on. The CLI prints their message without a traceback."""


class TransferLearnError(Exception):
    """Base class for every error transferlearn raises on purpose."""


class ConfigError(TransferLearnError):
    """A configuration key is unknown or its value is invalid."""


class DataError(TransferLearnError):
    """The user's data cannot be read as asked (names the file and row)."""


class ModelError(TransferLearnError):
    """A model cannot be found, converted or loaded."""
