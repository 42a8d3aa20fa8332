"""The JSON sidecar next to a NIfTI reconstruction (``recon.nii.gz`` → ``recon.json``), as dcm2niix writes one.

Keys are BIDS sidecar keys where BIDS has them, with BIDS units (times in **seconds**: the ISMRMRD header stores
TR/TE/TI in ms), and only for values the input states (:func:`~mrdiff_cli.io.header.acquisition_parameters`):
nothing is guessed. mrdiff's own keys start with ``Mrdiff``. The metrics JSON (``recon_metrics.json``) is a
different file: it holds the metrics and lists every output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: BIDS keys taken from the input's header, in the order they are written
HEADER_KEYS = ("Manufacturer", "ManufacturersModelName", "InstitutionName", "MagneticFieldStrength", "ImagingFrequency",
               "ProtocolName", "PatientPosition", "PulseSequenceType", "MRAcquisitionType", "SliceThickness",
               "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle")


def bids_sidecar(info, summary: dict[str, Any]) -> dict[str, Any]:
    """The sidecar of a reconstruction of the input described by ``info`` (a ScanInfo) with the job ``summary``
    (``tasks.recon_job.summarize``)."""
    from .. import __version__
    from .fastmri_out import options_record

    acq = info.facts.get("acquisition_parameters") or {}
    out: dict[str, Any] = {"Modality": "MR"}
    out.update({k: acq[k] for k in HEADER_KEYS if acq.get(k) is not None})
    mask = summary.get("mask") or {}
    s, c, h, w = info.shape
    out.update(
        AcquisitionMatrixPE=int(w),  # phase-encode lines of the k-space grid reconstructed
        ReconMatrixPE=int(info.image_shape[1]),
        PhaseEncodingAxis="j",  # mrdiff's layout: NIfTI i = readout, j = phase encode (polarity unknown)
    )
    if mask.get("achieved_accel"):
        out["ParallelReductionFactorInPlane"] = round(float(mask["achieved_accel"]), 4)
    out.update(ConversionSoftware="mrdiff", ConversionSoftwareVersion=__version__)
    opts = options_record(summary)
    label = (info.facts.get("attributes") or {}).get("acquisition")
    out.update({
        "MrdiffInput": Path(str(summary.get("input", info.path))).name,
        "MrdiffInputFormat": info.format,
        **({"MrdiffAcquisitionLabel": str(label)} if label else {}),
        "MrdiffCoils": int(c),
        "MrdiffSlices": [int(i) for i in summary.get("slices", [])],
        "MrdiffReadoutOversamplingRemoved": float(info.readout_oversampling),
        "MrdiffGeometry": info.geometry.source,
        "MrdiffMethod": opts["method"],
        "MrdiffSampler": opts["sampler"],
        "MrdiffCoilMode": opts["coil_mode"],
        "MrdiffSamples": opts["samples"],
        "MrdiffNFE": opts["nfe"],
        "MrdiffAcceleration": round(float(mask["achieved_accel"]), 4) if mask.get("achieved_accel") else None,
        "MrdiffMask": mask or None,
        "MrdiffSeed": opts["seed"],
        "MrdiffModel": opts["model"],
    })
    return {k: v for k, v in out.items() if v is not None}
