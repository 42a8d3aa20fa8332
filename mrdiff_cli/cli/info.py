"""`mrdiff info FILE`: what is in a raw k-space or image file (format, shape, sampling, geometry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import handle_errors, out_console, print_json, print_table
from .options import JsonOpt

InputFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--input-format",
        help="Force the input format (fastmri, ismrmrd, bart, nifti, dicom); default: detected from the content.",
        show_default=False,
    ),
]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return " x ".join(_fmt(x) for x in v)
    return str(v)


def _sampling_text(d: dict[str, Any]) -> str:
    s = d["sampling"]
    if not s.get("undersampled"):
        samp = "fully sampled"
        if (d.get("repetitions") or 1) > 1:
            samp += f" (union of {d['repetitions']} repetitions)"
        return samp
    samp = f"undersampled, R = {_fmt(s.get('acceleration'))}"
    if s.get("mask_type") == "1d":
        samp += f" ({s.get('sampled_lines')} of {d['matrix'][1]} lines)"
    if s.get("mask_source"):
        samp += f", mask from {s['mask_source']}"
    stated = [f"R = {_fmt(s['stated_acceleration'])}" if s.get("stated_acceleration") else "",
              f"{s['stated_acs']} low-frequency lines" if s.get("stated_acs") else ""]
    if any(stated):
        samp += "; the file states " + ", ".join(x for x in stated if x)
    return samp


def _raw_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    s = d["sampling"]
    shape = _fmt(d["stored_shape"])
    if d["stored_shape"] != d["shape"]:
        shape += f" stored → {_fmt(d['shape'])} read"
    rows = [
        ("Shape (slices x coils x H x W)", shape),
        ("Slices", str(d["slices"])),
        ("Coils", str(d["coils"]) + (" (single-coil)" if d.get("single_coil") else "")),
        ("Matrix (readout x phase)", _fmt(d["matrix"])),
        ("Output image matrix", _fmt(d["image_matrix"])),
        ("Sampling", _sampling_text(d)),
        ("ACS lines (fully sampled centre)", _fmt(s.get("acs_lines", s.get("acs_square")))),
        ("Readout oversampling", f"{_fmt(d.get('readout_oversampling'))} (removed on reading)"
         if d.get("readout_oversampling", 1) != 1 else "none"),
    ]
    if d.get("calibration_lines"):
        rows.append(("Calibration lines", str(len(d["calibration_lines"]))))
    if d.get("repetitions") is not None:
        rows.append(("Repetitions / averages", f"{d['repetitions']} / {d.get('averages', 1)}"))
    if d.get("noise_scan"):
        ns = d["noise_scan"]
        rows.append(("Noise scan", f"{ns['acquisitions']} acquisitions; k-space noise std {ns['kspace_std']:.3g} "
                     f"(coils {min(ns['std_per_coil']):.3g}-{max(ns['std_per_coil']):.3g}, "
                     f"max coil correlation {ns['max_coil_correlation']:.2f})"))
    hdr = d.get("header") or {}
    if hdr.get("parsed_by") in ("schema", "lenient"):
        how = "" if hdr["parsed_by"] == "schema" else " (read leniently: the schema parser rejected it)"
        rows.append(("Header encoded matrix / FOV mm", f"{_fmt(hdr.get('encoded_matrix'))} / {_fmt(hdr.get('encoded_fov_mm'))}{how}"))
        rows.append(("Header recon matrix / FOV mm", f"{_fmt(hdr.get('recon_matrix'))} / {_fmt(hdr.get('recon_fov_mm'))}"))
    else:
        rows.append(("Header", hdr.get("parsed_by", "absent")))
    ref = d.get("reference")
    rows.append(("Reference", f"{ref['name']} {_fmt(ref['shape'])}: {ref['description']}" if ref else "none"))
    return rows


def _rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("File", d["file"]), ("Format", f"{d['format']} ({d['kind']})")]
    if d["kind"] == "image":
        rows += [("Shape", _fmt(d["shape"])), ("Slices", str(d["slices"])), ("Matrix (H x W)", _fmt(d["matrix"])),
                 ("Value range", f"{_fmt(d['value_range'][0])} .. {_fmt(d['value_range'][1])}")]
    else:
        rows += _raw_rows(d)
    if d.get("non_finite_values"):
        where = ", ".join(str(i) for i in d["non_finite_slices"][:10]) + (", …" if len(d["non_finite_slices"]) > 10 else "")
        rows.append(("Non-finite values", f"{d['non_finite_values']} NaN/Inf (slice(s) {where})"))
    elif "values_finite" in d:
        rows.append(("Non-finite values", "none"))
    g = d["geometry"]
    rows.append(("Voxel size (mm)", _fmt(g["voxel_size_mm"])))
    rows.append(("Orientation", "from file" if g["affine_known"] else f"unknown ({g['source']}; default affine)"))
    for note in d.get("notes") or []:
        rows.append(("Note", note))
    return rows


@handle_errors
def info(
    file: Annotated[Path, typer.Argument(help="Raw k-space (fastMRI .h5, ISMRMRD .h5, BART .cfl/.hdr) or image (NIfTI, DICOM).",
                                         metavar="FILE", show_default=False)],
    json_out: JsonOpt = False,
    input_format: InputFormatOpt = None,
) -> None:
    """Show what a file holds: format, shape, coils, slices, sampling/acceleration, ACS (the fully sampled centre),
    geometry, reference, and how many values are NaN/Inf."""
    from ..io.detect import describe_input
    from ..io.metrics_json import to_jsonable

    d = to_jsonable(describe_input(file, input_format))
    if json_out:
        print_json(d)
        return
    print_table(out_console, ["field", "value"], [list(r) for r in _rows(d)], title=f"mrdiff info: {Path(d['file']).name}",
                show_header=False, no_wrap=("field",), title_justify="left")
