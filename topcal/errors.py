"""Errors that topcal reports to the user as one line (the CLI prints ``topcal: <message>``)."""


class TopcalError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""


class ConfigError(TopcalError, ValueError):
    """An invalid configuration value; the message names the field and the value."""


class InputFileError(TopcalError):
    """A missing, unreadable or non-DELPHES input file; the message names the file and what is wrong."""


class OutputError(TopcalError):
    """An output that cannot be written (exists without --overwrite, unwritable directory)."""
