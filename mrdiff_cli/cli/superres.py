"""`mrdiff superres`."""

from __future__ import annotations

from ..errors import NotAvailableError
from .common import handle_errors


@handle_errors
def superres() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff superres' is not available yet in this build")
