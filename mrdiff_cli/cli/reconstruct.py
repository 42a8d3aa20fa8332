"""`mrdiff reconstruct`."""

from __future__ import annotations

from ..errors import NotAvailableError
from .common import handle_errors


@handle_errors
def reconstruct() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff reconstruct' is not available yet in this build")
