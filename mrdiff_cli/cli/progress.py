"""Progress of long runs on stderr: a rich bar on a terminal, plain lines for pipelines and cluster logs.

Tasks emit events ``{"type": "progress" | "slices", "input", "slices_done", "slices", "step", "steps", "batch"}``,
and ``{"type": "tuning", "input", "slices_done": 0, "slices", "pilot"}`` while the self-tuning pilots run (``pilot``:
1, 2, ... for the count, "coil-map support 1" / "2" for the support choice, or "calibration" for the uncertainty
hold-out run).
When stderr is not a terminal, a line like ``mrdiff: scan.h5 slice 3/16, step 12/20, elapsed 0:01:23, ETA 0:05:10``
is written at most every ``MRDIFF_PROGRESS_INTERVAL`` seconds (default 10), plus one line when an input is done.
``--quiet`` silences both; stdout (``--json``) is never touched.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

DEFAULT_INTERVAL = 10.0


def clock_text(seconds: float) -> str:
    s = int(max(0.0, seconds) + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def fraction(e: dict[str, Any]) -> float:
    """Fraction of one input done: finished slices plus the running batch's share of its steps."""
    n = max(1, int(e.get("slices") or 1))
    done = float(e.get("slices_done") or 0)
    if e.get("type") == "progress" and e.get("steps"):
        batch = min(int(e.get("batch") or 1), n - int(done))
        done += batch * min(1.0, float(e["step"]) / float(e["steps"]))
    return min(1.0, done / n)


class PlainProgress:
    """One plain line at most every ``interval`` seconds (the first event prints at once)."""

    def __init__(self, interval: float | None = None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        env = os.environ.get("MRDIFF_PROGRESS_INTERVAL")
        self.interval = float(env) if interval is None and env else (DEFAULT_INTERVAL if interval is None else interval)
        self.stream = stream
        self.clock = clock
        self.t0: float | None = None
        self.t_run: float | None = None  # first event after the self-tuning pilots: the ETA's clock
        self.last: float | None = None

    def __call__(self, e: dict[str, Any]) -> None:
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
        started = self.t_run is None and e.get("type") != "tuning"  # sampling starts: say so at once
        if started:
            self.t_run = now
        finished = started or (e.get("type") == "slices" and e.get("slices_done") == e.get("slices"))
        if not finished and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        self._write(self.line(e, now - self.t0, now - (self.t_run if self.t_run is not None else self.t0)))

    def line(self, e: dict[str, Any], elapsed: float, running: float | None = None) -> str:
        """The progress line; ``running``: seconds since sampling started (after the pilots), for the ETA."""
        name = Path(str(e.get("input", ""))).name
        n = int(e.get("slices") or 1)
        frac = fraction(e)
        if e.get("type") == "slices" and e.get("slices_done") == n:
            return f"mrdiff: {name} done, {n} slice(s), elapsed {clock_text(elapsed)}"
        if e.get("type") == "tuning":
            return f"mrdiff: {name} {_tuning_text(e)}, elapsed {clock_text(elapsed)}"
        slice_no = min(n, int(e.get("slices_done") or 0) + 1)
        step = f", step {e['step']}/{e['steps']}" if e.get("type") == "progress" and e.get("steps") else ""
        run = elapsed if running is None else running
        eta = clock_text(run * (1.0 - frac) / frac) if frac > 0 else "?"
        return f"mrdiff: {name} slice {slice_no}/{n}{step}, elapsed {clock_text(elapsed)}, ETA {eta}"

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()


class Reporter:
    """Context manager giving the progress callback for a run: ``with Reporter(quiet) as cb: run(..., cb)``."""

    def __init__(self, quiet: bool, console: Any = None):
        self.quiet = quiet
        self.console = console
        self._bar: Progress | None = None

    def __enter__(self) -> Callable[[dict], None] | None:
        if self.quiet:
            return None
        tty = self.console.is_terminal if self.console is not None else sys.stderr.isatty()
        if not tty:
            return PlainProgress()
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[where]}"),
                                   TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        bar.__enter__()
        tasks: dict[str, Any] = {}

        def on_event(e: dict[str, Any]) -> None:
            name = Path(str(e["input"])).name
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=1.0, where="")
            where = (_tuning_text(e) if e.get("type") == "tuning"
                     else f"slice {min(e['slices'], e['slices_done'] + 1)}/{e['slices']}")
            bar.update(tasks[name], completed=fraction(e), where=where)

        return on_event

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _tuning_text(e: dict[str, Any]) -> str:
    if e.get("pilot") == "calibration":
        return "calibrating the uncertainty (hold-out samples)"
    pilot = str(e.get("pilot"))
    if pilot.startswith("coil-map support"):
        return f"choosing the coil maps' support (hold-out pilot {pilot.split()[-1]} of 2)"
    return f"choosing the consistency strength (hold-out pilot {pilot})"
