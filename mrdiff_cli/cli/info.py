"""`mrdiff info`."""

from __future__ import annotations

from ..errors import NotAvailableError
from .common import handle_errors


@handle_errors
def info() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff info' is not available yet in this build")
