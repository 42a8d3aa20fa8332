"""Error hierarchy. Every error a user can cause is an MrdiffError; the CLI maps it to one line + exit 2."""


class MrdiffError(Exception):
    """Base class of all known, user-facing errors (exit code 2)."""

    exit_code = 2


class InputError(MrdiffError):
    """The input file is missing, unreadable, or not what we expect."""


class OutputError(MrdiffError):
    """The output path cannot be written, or exists without --overwrite."""


class ModelError(MrdiffError):
    """A model bundle cannot be found, resolved, or does not fit the task."""


class UsageError(MrdiffError):
    """Options that contradict each other or are out of range."""


class NotAvailableError(MrdiffError):
    """A feature that is not available in this build."""
