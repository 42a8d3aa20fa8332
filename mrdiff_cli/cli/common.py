"""Shared CLI pieces: consoles, the error → exit-code mapping, option helpers. No torch import."""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

from rich.console import Console

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


def parse_slices(spec: str | None) -> tuple[int, int | None] | None:
    """--slices A:B (Python-style, end exclusive; either side may be empty) → (A, B) or None."""
    if not spec:
        return None
    try:
        a, b = spec.split(":")
        return (int(a) if a else 0, int(b) if b else None)
    except ValueError:
        from ..errors import UsageError

        raise UsageError(f"--slices {spec!r}: expected A:B") from None


def print_warnings(caught: list, quiet: bool) -> None:
    """Show warnings recorded during a run as one yellow line each on stderr (none with --quiet)."""
    for w in caught:
        if not quiet and not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            console.print(f"[yellow]warning:[/] {w.message}")


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
