"""The one output writer of reconstruct, superres and uncertainty: image volumes, derived volumes (zero-filled,
variance, std, samples), the metrics JSON and PNG sidecars (mask, preview, calibration).

Naming, for ``-o recon.nii.gz``: ``recon_variance.nii.gz``, ``recon_std.nii.gz``, ``recon_lower95.nii.gz``,
``recon_upper95.nii.gz``, ``recon_sample000.nii.gz`` …,
and sidecars ``recon_metrics.json``, ``recon_mask.png``, ``recon_preview.png``, ``recon_calibration.png``, plus the
BIDS-style JSON sidecar of a NIfTI image, ``recon.json`` (:mod:`~mrdiff_cli.io.sidecar`).
For ``-o recon.h5`` (fastMRI's submission layout, :mod:`~mrdiff_cli.io.fastmri_out`) the same names end ``.h5``
and the file attributes come from ``h5_attrs``.
For a DICOM series ``-o recon/`` (or ``recon.dcm``): derived series are sibling folders (``recon_variance/``, …) and
the sidecars go *inside* the series folder (``recon/metrics.json``, ``recon/mask.png``, …) so the folder is
self-contained. Missing parent folders are created (after the up-front checks, right before writing). Every file is
written atomically; the metrics JSON is written last and lists every file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..types import Geometry
from .atomic import check_output_path, ensure_parent
from .writers import infer_format, split_ext, write_volume

SIDECARS = {"metrics": "metrics.json", "mask": "mask.png", "preview": "preview.png", "calibration": "calibration.png"}
# DICOM SeriesNumber of each volume of one job (all series of a job share one StudyInstanceUID); sample k: 100 + k
SERIES_NUMBERS = {"image": 1, "variance": 2, "std": 3, "lower95": 4, "upper95": 5, "zero_filled": 6}
FILE_EXT = {"nifti": ".nii.gz", "dicom": "", "h5": ".h5"}  # one input's name inside an output folder


def is_folder_path(path: str | os.PathLike) -> bool:
    """``-o`` names a folder: it ends with ``/`` or its name has no extension (whether or not it exists)."""
    text = str(path)
    if text.endswith(("/", os.sep)):
        return True
    name = Path(text).name
    return split_ext(name)[1] == "" and "." not in name


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The output format of ``-o PATH``: ``fmt`` when given, else from the name alone, never from what exists on
    disk: ``.nii``/``.nii.gz`` NIfTI, ``.dcm`` or a folder path (:func:`is_folder_path`) a DICOM series, other
    known suffixes as :func:`~mrdiff_cli.io.writers.infer_format`; an unknown suffix is a usage error."""
    if fmt:
        return str(fmt).lower()
    if is_folder_path(path):
        return "dicom"
    name = Path(path).name
    if split_ext(name)[1] == "":
        from ..errors import UsageError

        raise UsageError(f"{path}: cannot tell the output format from the name; use .nii/.nii.gz, a folder for "
                         "DICOM (no extension, or a trailing /), or pass `fmt`")
    return infer_format(path)


def resolve_output(output: str | os.PathLike, fmt: str | None, src: str | os.PathLike, n_inputs: int = 1) -> Path:
    """Where one input's image goes, by one rule that does not depend on what exists on disk:

    * one input: ``-o`` itself (``x.nii.gz`` a NIfTI file, a folder path a DICOM series written *as* that folder),
      except a folder path with ``--format nifti``/``h5``: ``<folder>/<input stem>.nii.gz`` (``.h5``) inside it;
    * several inputs: ``-o`` is a folder holding ``<input stem>.nii.gz`` per input (``<input stem>/`` series with
      ``--format dicom``).
    """
    out = Path(output)
    f = output_format(output, fmt) if n_inputs == 1 else (fmt or "nifti").lower()
    if n_inputs > 1:
        if not is_folder_path(output):
            from ..errors import UsageError

            raise UsageError(f"-o {output}: several inputs need an output folder (a path without extension, "
                             "e.g. -o out/)")
    elif not (is_folder_path(output) and f != "dicom"):
        return out
    stem = Path(src).name.split(".")[0]
    return out / f"{stem}{FILE_EXT.get(f, '.' + f)}"


def probe_writable(folder: Path) -> None:
    """OutputError unless a file can really be created in ``folder`` (permission bits are not enough: root,
    read-only mounts, /proc): create and delete a hidden temporary file there."""
    probe = folder / f".mrdiff-tmp-probe-{secrets.token_hex(4)}"
    try:
        with open(probe, "wb"):
            pass
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write outputs there ({exc.strerror or exc})") from None
    with contextlib.suppress(OSError):
        probe.unlink()


def _nearest_existing(folder: Path) -> Path:
    folder = folder if str(folder) != "" else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


class Outputs:
    """Paths and writers for one job's outputs (see the module docstring); ``written`` maps kind → path(s)."""

    def __init__(self, image: str | os.PathLike, fmt: str | None = None, overwrite: bool = False):
        p = Path(image)
        self.fmt = output_format(p, fmt)
        stem, ext = split_ext(p.name.rstrip(os.sep))
        if self.fmt == "dicom":
            ext = ""  # a series is a folder: 'recon.dcm' → folder 'recon'
        elif self.fmt == "h5":
            stem, ext = (stem, ext) if ext.lower() == ".h5" else (p.name, ".h5")
        elif ext.lower() not in (".nii", ".nii.gz"):
            stem, ext = p.name, ".nii.gz"
        self.base = p.with_name(stem)
        self.ext = ext
        self.overwrite = overwrite
        self.written: dict[str, Any] = {}
        self._study_uid: str | None = None  # DICOM: one study for every series of the job
        self.h5_attrs: dict[str, Any] = {}  # file attributes of .h5 volumes (``mrdiff_volume`` is added per volume)

    @property
    def image(self) -> Path:
        return self.volume_path("")

    def volume_path(self, suffix: str) -> Path:
        return self.base.with_name(f"{self.base.name}{suffix}{self.ext}")

    def sidecar_path(self, kind: str) -> Path:
        if kind == "json":  # the image's BIDS-style sidecar: recon.nii.gz → recon.json
            return self.base.with_name(f"{self.base.name}.json")
        if self.fmt == "dicom":
            return self.image / SIDECARS[kind]
        return self.base.with_name(f"{self.base.name}_{SIDECARS[kind]}")

    # ------------------------------------------------------------------------------------------------ checks
    def check(self, suffixes: Sequence[str] = (), sidecars: Sequence[str] = ()) -> None:
        """Fail before any work when an output exists (without overwrite), or its folder cannot be written (tried
        for real: a temporary file is created and deleted), or a DICOM series would replace a folder that is not
        one. An existing empty folder is taken as the DICOM series folder without overwrite."""
        kind = "dir" if self.fmt == "dicom" else "file"
        paths = [self.volume_path(suffix) for suffix in ("", *suffixes)]
        for path in paths:
            if kind == "dir" and path.is_dir():
                if _empty_dir(path):
                    continue
                stray = next((f.name for f in path.iterdir() if f.is_dir() or (
                    f.suffix.lower() != ".dcm" and f.name not in SIDECARS.values())), None)
                if stray is not None:
                    raise OutputError(f"{path}: folder exists and holds '{stray}', so it is not a DICOM series to "
                                      "replace; give a new folder for the series, or `fmt` nifti to write the "
                                      "image inside this one")
            check_output_path(path, self.overwrite, kind=kind, parents=True)
        if self.fmt != "dicom":  # DICOM sidecars live inside the (new or replaced) series folder
            for name in (n for n in sidecars if n != "json" or self.fmt == "nifti"):  # JSON sidecar: NIfTI only
                check_output_path(self.sidecar_path(name), self.overwrite, parents=True)
                paths.append(self.sidecar_path(name))
        for folder in dict.fromkeys(_nearest_existing(p.parent) for p in paths):
            probe_writable(folder)

    # ------------------------------------------------------------------------------------------------ writers
    def volume(self, key: str, volume: np.ndarray, geometry: Geometry, description: str, suffix: str = "",
               **dicom_kwargs: Any) -> str:
        """Write a (slices, H, W) volume as ``key`` (list-valued keys collect several files)."""
        path = self.volume_path(suffix)
        v = np.asarray(volume, dtype=np.float32)
        bad = int(v.size - np.count_nonzero(np.isfinite(v)))
        if bad:  # never write (and never exit 0 with) NaN/Inf images
            raise OutputError(f"{path}: the {key.replace('_', '-')} image holds {bad} NaN/Inf value(s); not written")
        ensure_parent(path)
        overwrite = self.overwrite or (self.fmt == "dicom" and _empty_dir(path))
        extra = dicom_kwargs if self.fmt == "dicom" else {}
        if self.fmt == "dicom":
            from pydicom.uid import generate_uid

            self._study_uid = self._study_uid or generate_uid()
            extra = {"series_number": SERIES_NUMBERS.get(key, 1), "study_uid": self._study_uid, **extra}
        if self.fmt == "h5":
            extra = {"attrs": {**self.h5_attrs, "mrdiff_volume": suffix.lstrip("_") if key == "samples" else key}}
        out = str(write_volume(path, v, geometry, self.fmt, description, overwrite=overwrite, **extra))
        self._record(key, out)
        return out

    def spread(self, variance: np.ndarray, geometry: Geometry, description: str, mean: np.ndarray | None = None,
               z: float = 1.96) -> None:
        """Variance and std maps of K posterior samples; with ``mean``, also the 95 % interval bounds
        ``max(0, mean - z std)`` (``_lower95``) and ``mean + z std`` (``_upper95``)."""
        var = np.asarray(variance, dtype=np.float32)
        std = np.sqrt(np.maximum(var, 0.0))
        self.volume("variance", var, geometry, description + " variance", "_variance", series_number=2)
        self.volume("std", std, geometry, description + " std", "_std", series_number=3)
        if mean is not None:
            m = np.asarray(mean, dtype=np.float32)
            self.volume("lower95", np.maximum(m - np.float32(z) * std, 0.0), geometry,
                        description + " lower 95%", "_lower95", series_number=4)
            self.volume("upper95", m + np.float32(z) * std, geometry, description + " upper 95%", "_upper95",
                        series_number=5)

    def samples(self, samples: np.ndarray, geometry: Geometry, description: str) -> None:
        """Every posterior sample, (K, slices, H, W)."""
        for k in range(samples.shape[0]):
            self.volume("samples", samples[k], geometry, f"{description} sample {k}", f"_sample{k:03d}",
                        series_number=100 + k)

    def mask_png(self, mask: np.ndarray) -> None:
        from .grid import save_grid

        path = self._sidecar("mask")
        save_grid(path, np.asarray(mask, dtype=np.float32)[None], vmax=1.0, overwrite=self.overwrite)
        self._record("mask_png", str(path))

    def preview(self, panels: Sequence[tuple[str, np.ndarray]]) -> None:
        from .png import write_preview

        self._record("preview", str(write_preview(self._sidecar("preview"), panels, overwrite=self.overwrite)))

    def sidecar(self, kind: str, key: str, write) -> None:
        """Any other sidecar: ``write(path, overwrite)`` produces it (e.g. the calibration plot)."""
        self._record(key, str(write(self._sidecar(kind), self.overwrite)))

    def json_sidecar(self, sidecar: dict[str, Any]) -> None:
        """The BIDS-style sidecar of the image (NIfTI only; nothing for DICOM or .h5)."""
        if self.fmt != "nifti":
            return
        from .metrics_json import write_json

        path = self._sidecar("json")
        write_json(path, sidecar, overwrite=self.overwrite)
        self._record("json_sidecar", str(path))

    def metrics_json(self, summary: dict[str, Any]) -> None:
        """The metrics JSON (last, so it lists every file written)."""
        from .metrics_json import write_json

        path = self._sidecar("metrics")
        self._record("metrics", str(path))
        write_json(path, summary, overwrite=self.overwrite)

    # ------------------------------------------------------------------------------------------------ helpers
    def _sidecar(self, kind: str) -> Path:
        path = self.sidecar_path(kind)
        ensure_parent(path)
        return path

    def _record(self, key: str, path: str) -> None:
        if key in ("samples",):
            self.written.setdefault(key, []).append(path)
        else:
            self.written[key] = path
