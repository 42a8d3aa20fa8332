"""Atomic output: write to a temporary sibling, rename into place on success, delete it on failure.

Nothing half-written is ever left at the requested path: a crash or an error inside the ``with`` block
removes the temporary file (or folder) and leaves any previous output untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError

_TMP_PREFIX = ".mrdiff-tmp-"


def check_output_path(path: str | os.PathLike, overwrite: bool = False, *, kind: str = "file",
                      parents: bool = False) -> Path:
    """Validate an output path before any work is done; return it as a Path.

    Raises OutputError (one line, naming the path) when the output exists and ``overwrite`` is False, when the
    parent directory is missing (allowed with ``parents=True`` when the nearest existing ancestor is a writable
    directory: :func:`ensure_parent` creates it later) or not a directory, or when it is not writable.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise OutputError(f"{path}: not a valid output path")
    parent = p.parent if str(p.parent) != "" else Path(".")
    if not parent.exists() and parents:
        anc = parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        parent = anc
    elif not parent.exists():
        raise OutputError(f"{p}: cannot write output, directory '{parent}' does not exist")
    if not parent.is_dir():
        raise OutputError(f"{p}: cannot write output, '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{p}: cannot write output, directory '{parent}' is not writable")
    if p.exists() or p.is_symlink():
        if not overwrite:
            raise OutputError(f"{p}: output exists (use `overwrite` to replace it)")
        if kind == "file" and p.is_dir():
            raise OutputError(f"{p}: output exists and is a directory, expected a file")
        if kind == "dir" and not p.is_dir():
            raise OutputError(f"{p}: output exists and is a file, expected a directory")
    return p


def ensure_parent(path: str | os.PathLike) -> None:
    """Create the missing folders above an output path (OutputError naming it when that fails)."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder '{parent}' ({exc.strerror or exc})") from None


def _tmp_sibling(p: Path) -> Path:
    # keep the full original name at the end so format-by-extension writers (nibabel) still work
    return p.parent / f"{_TMP_PREFIX}{secrets.token_hex(4)}-{p.name}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary name ends with the original file name, so writers that pick the format from the
    extension (``.nii.gz``) behave the same. On any exception the temporary file is deleted and the
    exception propagates; OSErrors while creating or renaming become OutputError naming ``path``.
    """
    p = check_output_path(path, overwrite, kind="file")
    tmp = _tmp_sibling(p)
    try:
        # probe: fail early (and with our message) when the directory cannot take a new file
        with open(tmp, "wb"):
            pass
    except OSError as exc:
        raise OutputError(f"{p}: cannot write output ({exc.strerror or exc})") from None
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{p}: writer produced no output")
        try:
            os.replace(tmp, p)
        except OSError as exc:
            raise OutputError(f"{p}: cannot move output into place ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary, empty folder next to ``path``; rename it to ``path`` when the block succeeds.

    With ``overwrite`` an existing folder at ``path`` is replaced only after the new one is complete
    (old one moved aside, new one renamed in, old one deleted).
    """
    p = check_output_path(path, overwrite, kind="dir")
    tmp = _tmp_sibling(p)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise OutputError(f"{p}: cannot write output ({exc.strerror or exc})") from None
    try:
        yield tmp
        old = None
        if p.exists():
            old = p.parent / f"{_TMP_PREFIX}old-{secrets.token_hex(4)}-{p.name}"
            try:
                os.replace(p, old)
            except OSError as exc:
                raise OutputError(f"{p}: cannot replace existing output ({exc.strerror or exc})") from None
        try:
            os.replace(tmp, p)
        except OSError as exc:
            if old is not None:
                with contextlib.suppress(OSError):
                    os.replace(old, p)
            raise OutputError(f"{p}: cannot move output into place ({exc.strerror or exc})") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders and replacing an existing file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p, overwrite=True) as tmp:
        tmp.write_bytes(data)
