"""Errors a user can act on. The CLI prints their message without a traceback."""


class TransferLearnError(Exception):
    """Base class for every error transferlearn raises on purpose."""

    exit_code = 2  # the CLI's exit status: 2 for anything the user can fix by changing what they asked for


class ConfigError(TransferLearnError):
    """A configuration key is unknown or its value is invalid."""


class DataError(TransferLearnError):
    """The user's data cannot be read as asked (names the file and row)."""


class ModelError(TransferLearnError):
    """A model cannot be found, converted or loaded."""


class TrainingDiverged(TransferLearnError):
    """The loss became NaN or infinite: training stopped before the bad step changed the weights."""


class RunInterrupted(TransferLearnError):
    """SIGINT / SIGTERM stopped training after a checkpoint was saved."""

    exit_code = 130

    def __init__(self, message: str, signal_name: str = "SIGINT", resumable: bool = True):
        super().__init__(message)
        self.signal_name, self.resumable = signal_name, resumable
        if signal_name == "SIGTERM":
            self.exit_code = 143  # 128 + the signal's number, as a shell reports a process it stopped
