"""`mrdiff uncertainty`."""

from __future__ import annotations

from ..errors import NotAvailableError
from .common import handle_errors


@handle_errors
def uncertainty() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff uncertainty' is not available yet in this build")
