"""`mrdiff simulate`."""

from __future__ import annotations

from ..errors import NotAvailableError
from .common import handle_errors


@handle_errors
def simulate() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff simulate' is not available yet in this build")
