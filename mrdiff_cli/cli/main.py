"""The `mrdiff` Typer app. Subcommands live one per module; torch is imported only inside commands."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import info as info_cmd
from . import models as models_cmd
from . import reconstruct as reconstruct_cmd
from . import simulate as simulate_cmd
from . import superres as superres_cmd
from . import train as train_cmd
from . import uncertainty as uncertainty_cmd
from .common import OneLineErrorGroup

app = typer.Typer(
    name="mrdiff",
    cls=OneLineErrorGroup,
    help="Diffusion-prior MRI: reconstruct undersampled k-space, super-resolve, and map uncertainty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mrdiff {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """mrdiff command-line interface."""


app.command("reconstruct")(reconstruct_cmd.reconstruct)
app.command("superres")(superres_cmd.superres)
app.command("uncertainty")(uncertainty_cmd.uncertainty)
app.add_typer(train_cmd.app, name="train")
app.command("info")(info_cmd.info)
app.command("simulate")(simulate_cmd.simulate)
app.add_typer(models_cmd.app, name="models")


def run() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
