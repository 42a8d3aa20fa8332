"""`mrdiff train`."""

from __future__ import annotations

import typer

from ..errors import NotAvailableError
from .common import handle_errors

app = typer.Typer(help="train (not available yet)", no_args_is_help=True)


@app.command("placeholder")
@handle_errors
def placeholder() -> None:
    """Not available yet in this build."""
    raise NotAvailableError("'mrdiff train' is not available yet in this build")
