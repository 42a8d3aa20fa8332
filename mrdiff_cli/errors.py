"""Error hierarchy. Every error a user can cause is an MrdiffError; the CLI maps it to one line + exit 2.

Messages speak the library's language, never the command line's: a parameter is named by its Python name in
backticks (``"`accel` needs `mask_kind`"``), and the parameter at fault goes in ``option=`` (``str()`` then starts
with it: ``"`accel`: must be > 1"``). The CLI boundary (:func:`mrdiff_cli.cli.common.cli_text`) renders every
backticked name as its flag (``--accel: must be > 1``), so no library message names a flag the caller never typed.
"""


class MrdiffError(Exception):
    """Base class of all known, user-facing errors (exit code 2).

    ``option``: the name of the parameter at fault (the library's name, e.g. ``"accel"``, ``"from_hw"``), or None;
    ``message``: the text without it."""

    exit_code = 2

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option

    def __str__(self) -> str:
        return f"`{self.option}`: {self.message}" if self.option else self.message


class InputError(MrdiffError):
    """The input file is missing, unreadable, or not what we expect."""


class OutputError(MrdiffError):
    """The output path cannot be written, or exists and overwriting was not asked for."""


class ModelError(MrdiffError):
    """A model bundle cannot be found, resolved, or does not fit the task."""


class UsageError(MrdiffError):
    """Options that contradict each other or are out of range."""


class NotAvailableError(MrdiffError):
    """A feature that is not available in this build."""
