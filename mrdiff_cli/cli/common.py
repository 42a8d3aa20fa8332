"""Shared CLI pieces: consoles, the error → exit-code mapping, option helpers. No torch import."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

try:  # Typer >= 0.20 parses with its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from ..errors import MrdiffError, UsageError

# progress/info to stderr so stdout stays clean for --json
console = Console(stderr=True)
out_console = Console()


def debug_enabled() -> bool:
    return os.environ.get("MRDIFF_DEBUG", "") not in ("", "0", "false", "False")


# parameter names whose flag is not "--" + the name with dashes (the library's names included: tasks call the
# matrices from_hw / to_hw, the output format fmt, the simulated mask kind mask_kind, the validation volumes
# val_inputs)
FLAG_NAMES = {
    "from_": "--from", "from_hw": "--from", "to_hw": "--to", "lambda_": "--lambda", "fmt": "--format",
    "json_out": "--json", "mask_kind": "--mask", "snr_db": "--snr", "n_cg": "--cg-iters", "val_inputs": "--val",
    "noise_dc": "--noise-consistency", "compress_coils": "--coils",
}
_PARAM_RE = re.compile(r"`([a-z][a-z0-9_]*)`")


def flag_name(param: str) -> str:
    """The command-line flag of a parameter name: ``accel`` → ``--accel``, ``val_fraction`` → ``--val-fraction``,
    the exceptions from :data:`FLAG_NAMES` (``from_`` → ``--from``, ``fmt`` → ``--format``)."""
    return FLAG_NAMES.get(param) or "--" + param.rstrip("_").replace("_", "-")


def cli_text(text: str) -> str:
    """A library message as the command line shows it: every parameter written `name` (the convention of
    :mod:`mrdiff_cli.errors`, the parameter at fault included) becomes its flag: ```accel`: must be > 1`` →
    ``--accel: must be > 1``."""
    return _PARAM_RE.sub(lambda m: flag_name(m.group(1)), str(text))


def error_text(exc: BaseException) -> str:
    """The one line the CLI shows for an error (see :func:`cli_text`)."""
    return one_line(cli_text(str(exc)))


def handle_errors(fn: Callable) -> Callable:
    """The single place that turns errors into one line on stderr: the project's own errors
    (:class:`~mrdiff_cli.errors.MrdiffError`: user-caused) exit 2; anything else — a bare ``ValueError`` or
    ``OSError`` included — is a bug and exits 1 as ``mrdiff: internal error: …`` (``MRDIFF_DEBUG=1`` re-raises for the
    traceback). Library messages name parameters, not flags; here they become flags (:func:`cli_text`: ``--accel: …``).
    With
    ``--json`` (``json_out``) a JSON object ``{"error": …, "exit_code": …}`` also goes to stdout, so a pipeline
    reading stdout never gets nothing."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_mode = bool(kwargs.get("json_out"))
        try:
            return fn(*args, **kwargs)
        except MrdiffError as exc:
            if debug_enabled():
                raise
            fail(error_text(exc), exc.exit_code, json_mode and not getattr(exc, "json_reported", False))
        except KeyboardInterrupt:
            fail("interrupted", 130, json_mode, prefix="mrdiff: ")
        except (typer.Exit, typer.Abort, click_exceptions.ClickException):
            raise  # Typer's own control flow and usage errors (OneLineErrorGroup reports those)
        except Exception as exc:  # a bug: still one line (the traceback with MRDIFF_DEBUG=1)
            if debug_enabled():
                raise
            fail(f"{type(exc).__name__}: {exc} (set MRDIFF_DEBUG=1 for the traceback)", 1, json_mode,
                 prefix="mrdiff: internal error: ")

    return wrapper


def fail(message: str, exit_code: int = 2, json_mode: bool = False, prefix: str = "mrdiff: error: ") -> None:
    """Write the one error line on stderr (and, in --json mode, the JSON error object on stdout); exit."""
    msg = one_line(message)
    if json_mode:
        print_json({"error": msg, "exit_code": exit_code})
    sys.stderr.write(f"{prefix}{msg}\n")
    sys.stderr.flush()
    raise SystemExit(exit_code) from None


DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(spec: str) -> str:
    """--device: auto, cpu, cuda or cuda:N (checked before anything loads; CUDA availability later)."""
    if not DEVICE_RE.match(str(spec).strip().lower()):
        raise UsageError(f"--device {spec!r}: choose auto, cpu, cuda or cuda:N")
    return str(spec).strip().lower()


def parse_slices(spec: str | None):
    """--slices: ``3``, ``3:7`` (end exclusive), ``1,4,6`` → :class:`~mrdiff_cli.types.SliceSpec` (None = all)."""
    from ..types import SliceSpec

    return SliceSpec.parse(spec)


def one_line(text: str) -> str:
    """Collapse a message onto one line (errors are exactly one stderr line)."""
    return " ".join(str(text).split())


class OneLineErrorGroup(TyperGroup):
    """The Typer group of `mrdiff`: usage errors (bad option values, unknown options, missing arguments) become
    one ``mrdiff: error: …`` line on stderr with exit code 2 instead of a multi-line box (plus the JSON error object
    on stdout when ``--json`` is on the command line), and the help reads well (:func:`polish_help`)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        polish_help(self)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:  # bare `mrdiff` (or group): the help, not an error
            # the exception already rendered the help while being built: with rich it is printed then (and the
            # message is empty), without rich the message holds the text; print it once either way
            text = exc.format_message()
            if text:
                sys.stdout.write(text + "\n")
            sys.exit(0)
        except click_exceptions.ClickException as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) is not None else ""
            msg = one_line(exc.format_message()).replace("Value error, ", "")
            if "--json" in argv and "--help" not in argv and "-h" not in argv:
                print_json({"error": msg, "exit_code": exc.exit_code})
            sys.stderr.write(f"mrdiff: error: {msg}{hint}\n")
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("mrdiff: interrupted\n")
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def polish_help(cmd: Any) -> None:
    """Help that reads well, for ``cmd`` and every subcommand: boolean flags show no ``<bool>`` metavar (nor
    ``--help``); arguments show their metavar (``FILE...``) in the usage line and no Python type
    (``<list[Path]>``) in the table."""
    for param in cmd.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
        if getattr(param, "param_type_name", "") == "argument" and not getattr(param, "_mrdiff_polished", False):
            _polish_argument(param)
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
        polish_help(sub)


def _polish_argument(param: Any) -> None:
    """``FILE...`` / ``[FILE]`` in the usage line (Typer writes ``{inputs}...``) and no type column."""
    name = param.metavar or param.name.upper()
    many = param.nargs != 1 and not name.endswith("...")
    usage = (name if param.required else f"[{name}]") + ("..." if many else "")
    param.metavar = name + ("..." if many else "")
    param.get_usage_pieces = lambda ctx, usage=usage: [usage]
    param.display_type_rich = lambda ctx: None
    param._mrdiff_polished = True


hide_flag_metavars = polish_help  # the former name


def print_table(con: Console, columns: list[str], rows: list[list[Any]], *, title: str | None = None,
                show_header: bool = True, no_wrap: tuple[str, ...] = (), **table_kw: Any) -> None:
    """A table on ``con``. On a terminal: a rich table (cells of ``no_wrap`` columns never wrap, the others fold to
    the width). Elsewhere (pipes, cluster logs): plain text that never wraps: the title, then columns padded to
    their widest cell and separated by two spaces, one line per row, whatever the width. Cells are str or rich
    Text (markup in str cells is not interpreted)."""
    from rich.text import Text

    def plain(cell: Any) -> str:
        return cell.plain if isinstance(cell, Text) else str(cell)

    if not con.is_terminal:
        body = ([list(columns)] if show_header else []) + [[plain(c) for c in r] for r in rows]
        widths = [max(len(r[i]) for r in body) for i in range(len(columns))] if body else []
        lines = [title] if title else []
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in body]
        for line in lines:
            con.print(line, markup=False, highlight=False, soft_wrap=True, emoji=False)
        return
    from rich.table import Table

    t = Table(title=title, show_header=show_header, **table_kw)
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=col in no_wrap)
    for r in rows:
        t.add_row(*[c if isinstance(c, Text) else Text(str(c)) for c in r])
    con.print(t)


def say(text: str, con: Console | None = None) -> None:
    """One message line on the console (stderr by default): folded to the width on a terminal, never wrapped in
    logs; no markup, no highlighting."""
    con = con or console
    if con.is_terminal:
        con.print(text, markup=False, highlight=False, emoji=False, overflow="fold")
    else:
        con.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def print_warnings(caught: list, quiet: bool) -> None:
    """Show warnings recorded during a run as one yellow line each on stderr (none with --quiet)."""
    for w in caught:
        if not quiet and not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            console.print(f"[yellow]warning:[/] {one_line(cli_text(str(w.message)))}", soft_wrap=True, highlight=False)


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
