"""Shared CLI pieces: consoles, the error → exit-code mapping, option helpers. No torch import."""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

import typer
from rich.console import Console
from typer.core import TyperGroup

try:  # Typer >= 0.20 parses with its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer on the real click
    from click import exceptions as click_exceptions

from ..errors import MrdiffError

# progress/info to stderr so stdout stays clean for --json
console = Console(stderr=True)
out_console = Console()


def debug_enabled() -> bool:
    return os.environ.get("MRDIFF_DEBUG", "") not in ("", "0", "false", "False")


def handle_errors(fn: Callable) -> Callable:
    """The single place that turns known errors into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MrdiffError as exc:
            if debug_enabled():
                raise
            sys.stderr.write(f"mrdiff: error: {exc}\n")
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("mrdiff: interrupted\n")
            raise SystemExit(130) from None
        except (OSError, ValueError) as exc:  # unexpected but user-caused in practice (paths, shapes)
            if debug_enabled():
                raise
            sys.stderr.write(f"mrdiff: error: {exc}\n")
            raise SystemExit(2) from None

    return wrapper


def parse_slices(spec: str | None):
    """--slices: ``3``, ``3:7`` (end exclusive), ``1,4,6`` → :class:`~mrdiff_cli.types.SliceSpec` (None = all)."""
    from ..types import SliceSpec

    return SliceSpec.parse(spec)


def one_line(text: str) -> str:
    """Collapse a message onto one line (errors are exactly one stderr line)."""
    return " ".join(str(text).split())


class OneLineErrorGroup(TyperGroup):
    """The Typer group of `mrdiff`: usage errors (bad option values, unknown options, missing arguments) become
    one ``mrdiff: error: …`` line on stderr with exit code 2 instead of a multi-line box, and boolean flags show no
    ``<bool>`` metavar in --help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        hide_flag_metavars(self)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:  # bare `mrdiff`: the help, not an error
            text = exc.ctx.get_help()
            if text:
                sys.stdout.write(text + "\n")
            sys.exit(0)
        except click_exceptions.ClickException as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) is not None else ""
            msg = one_line(exc.format_message()).replace("Value error, ", "")
            sys.stderr.write(f"mrdiff: error: {msg}{hint}\n")
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("mrdiff: interrupted\n")
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def hide_flag_metavars(cmd: Any) -> None:
    """Boolean flags take no value: show no metavar for them (Typer would print ``<bool>``)."""
    for param in cmd.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    if not getattr(cmd, "_mrdiff_help_patched", False):  # the --help option is made lazily, per command
        make_help = cmd.get_help_option

        def get_help_option(ctx: Any, make_help=make_help) -> Any:
            opt = make_help(ctx)
            if opt is not None:
                opt.metavar = ""
            return opt

        cmd.get_help_option = get_help_option
        cmd._mrdiff_help_patched = True
    for sub in getattr(cmd, "commands", {}).values():
        hide_flag_metavars(sub)


def print_warnings(caught: list, quiet: bool) -> None:
    """Show warnings recorded during a run as one yellow line each on stderr (none with --quiet)."""
    for w in caught:
        if not quiet and not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            console.print(f"[yellow]warning:[/] {one_line(str(w.message))}", soft_wrap=True, highlight=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
