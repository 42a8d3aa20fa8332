"""ISMRMRD XML headers: read into :class:`~mrdiff_cli.types.HeaderFacts` (schema parser first, then a lenient
ElementTree read of the fields we need), and a small header writer for simulated files.

Real files carry headers the ismrmrd schema rejects (a missing ``<experimentalConditions>``, vendor elements,
a wrong element order). Ignoring them would silently drop the readout oversampling and the voxel size, so when the
schema parser fails the matrices, FOVs, limits, trajectory, acceleration and channel count are read from the plain
XML (namespaces ignored) and the facts say ``parsed_by="lenient"`` with the parser's complaint in ``problem``; the
readers turn that into a one-line warning.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import numpy as np

from ..types import HeaderFacts

LIMIT_NAMES = ("kspace_encoding_step_1", "kspace_encoding_step_2", "slice", "repetition", "average")


def _text(xml: bytes | str | np.bytes_) -> str:
    if isinstance(xml, (bytes, bytearray, np.bytes_)):
        return bytes(xml).decode("utf-8", errors="replace")
    return str(xml)


def _one_line(exc: BaseException, limit: int = 120) -> str:
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def parse_header(xml: bytes | str | np.bytes_ | None) -> HeaderFacts:
    """HeaderFacts of an ISMRMRD XML document (see the module docstring); never raises."""
    if xml is None:
        return HeaderFacts(parsed_by="absent")
    text = _text(xml)
    try:
        return _from_schema(text)
    except Exception as exc:  # the validating parser rejected it: read what we need leniently
        problem = _one_line(exc)
    try:
        return _from_etree(text, problem)
    except ElementTree.ParseError as exc:
        return HeaderFacts(parsed_by="unreadable", problem=f"not XML ({_one_line(exc)})")


def header_warning(facts: HeaderFacts, path: Any) -> str | None:
    """The one-line warning for a header that was not read by the schema parser (None when it was, or is absent)."""
    if facts.parsed_by == "lenient":
        return (f"{path}: the ismrmrd parser rejected the header ({facts.problem}); matrices, FOV and limits were read "
                "from the XML directly")
    if facts.parsed_by == "unreadable":
        return f"{path}: the ISMRMRD header is unreadable ({facts.problem}); using the k-space shape and 1 mm voxels"
    return None


def _triple(obj: Any, cast=float) -> tuple | None:
    if obj is None:
        return None
    return (cast(obj.x), cast(obj.y), cast(obj.z))


def _from_schema(text: str) -> HeaderFacts:
    import ismrmrd.xsd

    hdr = ismrmrd.xsd.CreateFromDocument(text)
    enc = hdr.encoding[0]
    limits = {}
    if enc.encodingLimits is not None:
        for name in LIMIT_NAMES:
            v = getattr(enc.encodingLimits, name, None)
            if v is not None:
                limits[name] = (int(v.minimum), int(v.maximum), int(v.center))
    accel = cal = None
    pi = enc.parallelImaging
    if pi is not None and pi.accelerationFactor is not None:
        accel = int(pi.accelerationFactor.kspace_encoding_step_1)
        cm = getattr(pi, "calibrationMode", None)
        cal = None if cm is None else str(getattr(cm, "value", cm))
    asi = hdr.acquisitionSystemInformation
    chans = int(asi.receiverChannels) if asi is not None and asi.receiverChannels is not None else None
    return HeaderFacts(
        encoded_matrix=_triple(enc.encodedSpace.matrixSize, int),
        encoded_fov_mm=_triple(enc.encodedSpace.fieldOfView_mm),
        recon_matrix=_triple(enc.reconSpace.matrixSize, int),
        recon_fov_mm=_triple(enc.reconSpace.fieldOfView_mm),
        trajectory=str(getattr(enc.trajectory, "value", enc.trajectory)),
        limits=limits, acceleration=accel, calibration_mode=cal, receiver_channels=chans,
        n_encodings=len(hdr.encoding), parsed_by="schema",
    )


# ---------------------------------------------------------------------------------------------------- lenient


def _strip_ns(root: ElementTree.Element) -> ElementTree.Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _num(el: ElementTree.Element | None, name: str, cast=float) -> Any:
    if el is None:
        return None
    child = el.find(name)
    if child is None or child.text is None:
        return None
    try:
        return cast(float(child.text.strip()))
    except ValueError:
        return None


def _xyz(el: ElementTree.Element | None, cast=float) -> tuple | None:
    vals = tuple(_num(el, k, cast) for k in ("x", "y", "z"))
    if vals[0] is None or vals[1] is None:
        return None
    return (vals[0], vals[1], vals[2] if vals[2] is not None else cast(1))


def _from_etree(text: str, problem: str) -> HeaderFacts:
    root = _strip_ns(ElementTree.fromstring(text))
    encs = root.findall("encoding")
    enc = encs[0] if encs else None
    if enc is None:
        return HeaderFacts(parsed_by="lenient", problem=problem + "; no <encoding> element")
    limits = {}
    lim = enc.find("encodingLimits")
    for name in LIMIT_NAMES:
        el = lim.find(name) if lim is not None else None
        vals = [_num(el, k, int) for k in ("minimum", "maximum", "center")]
        if el is not None and None not in vals:
            limits[name] = tuple(vals)
    pi = enc.find("parallelImaging")
    accel = _num(pi.find("accelerationFactor") if pi is not None else None, "kspace_encoding_step_1", int)
    traj = enc.findtext("trajectory")
    return HeaderFacts(
        encoded_matrix=_xyz(enc.find("encodedSpace/matrixSize"), int),
        encoded_fov_mm=_xyz(enc.find("encodedSpace/fieldOfView_mm")),
        recon_matrix=_xyz(enc.find("reconSpace/matrixSize"), int),
        recon_fov_mm=_xyz(enc.find("reconSpace/fieldOfView_mm")),
        trajectory=traj.strip() if traj else None,
        limits=limits, acceleration=accel,
        calibration_mode=(pi.findtext("calibrationMode") or None) if pi is not None else None,
        receiver_channels=_num(root.find("acquisitionSystemInformation"), "receiverChannels", int),
        n_encodings=len(encs), parsed_by="lenient", problem=problem,
    )


# ---------------------------------------------------------------------------------------------------- writer


def minimal_ismrmrd_header(matrix: tuple[int, int], voxel_size: tuple[float, float, float], coils: int,
                           n_slices: int = 1, encoded_x: int | None = None,
                           recon: tuple[int, int] | None = None) -> str:
    """A small schema-valid ISMRMRD XML header (cartesian): encoded/recon matrix and FOV, limits, channels.

    ``matrix`` = (H, W) of the stored k-space without readout oversampling; ``encoded_x`` = the stored readout
    length (default H); ``recon`` = the recon matrix (default ``matrix``). FOVs are voxel size x matrix.
    """
    import ismrmrd.xsd as x

    h, w = int(matrix[0]), int(matrix[1])
    ex = int(encoded_x or h)
    rh, rw = (int(v) for v in (recon or (h, w)))
    dx, dy, dz = (float(v) for v in voxel_size)
    enc = x.encodingType(
        encodedSpace=x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=ex, y=w, z=1),
            fieldOfView_mm=x.fieldOfViewMm(x=dx * ex, y=dy * w, z=dz),
        ),
        reconSpace=x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=rh, y=rw, z=1),
            fieldOfView_mm=x.fieldOfViewMm(x=dx * rh, y=dy * rw, z=dz),
        ),
        encodingLimits=x.encodingLimitsType(
            kspace_encoding_step_1=x.limitType(minimum=0, maximum=w - 1, center=w // 2),
            kspace_encoding_step_2=x.limitType(minimum=0, maximum=0, center=0),
            slice=x.limitType(minimum=0, maximum=max(0, n_slices - 1), center=0),
        ),
        trajectory=x.trajectoryType.CARTESIAN,
    )
    hdr = x.ismrmrdHeader(
        acquisitionSystemInformation=x.acquisitionSystemInformationType(
            receiverChannels=int(coils), institutionName="mrdiff simulation"
        ),
        experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63500000),
        encoding=[enc],
    )
    out = x.ToXML(hdr)
    return out.decode() if isinstance(out, bytes) else str(out)


# ---------------------------------------------------------------------------------------------------- acquisition


def _single(root: ElementTree.Element, path: str, scale: float = 1.0) -> float | None:
    """The one number at ``path`` (× scale); None when absent, not a number, or several different values."""
    vals = set()
    for el in root.findall(path):
        try:
            vals.add(float((el.text or "").strip()) * scale)
        except ValueError:
            return None
    return vals.pop() if len(vals) == 1 else None


def acquisition_parameters(xml: bytes | str | np.bytes_ | None) -> dict[str, Any]:
    """What an ISMRMRD XML header says about the acquisition, under BIDS sidecar keys (SI units as BIDS wants them).

    Only values the header states are returned: ``Manufacturer``, ``ManufacturersModelName``, ``InstitutionName``,
    ``MagneticFieldStrength`` (T), ``ImagingFrequency`` (MHz), ``ProtocolName``, ``PatientPosition``,
    ``PulseSequenceType`` (ISMRMRD ``sequence_type``), ``RepetitionTime`` / ``EchoTime`` / ``InversionTime``
    (ISMRMRD stores ms; BIDS wants **seconds**), ``FlipAngle`` (degrees), ``MRAcquisitionType`` (``2D`` / ``3D``
    from the encoded matrix z) and ``SliceThickness`` (mm, the encoded FOV z of a 2D encoding). A parameter given
    several different values (multi-echo, several TRs) is left out rather than guessed. Read with ElementTree
    (namespaces ignored) so headers the schema rejects still give their values; never raises.
    """
    if xml is None:
        return {}
    try:
        root = _strip_ns(ElementTree.fromstring(_text(xml)))
    except ElementTree.ParseError:
        return {}
    out: dict[str, Any] = {}
    for key, path in (("Manufacturer", "acquisitionSystemInformation/systemVendor"),
                      ("ManufacturersModelName", "acquisitionSystemInformation/systemModel"),
                      ("InstitutionName", "acquisitionSystemInformation/institutionName"),
                      ("ProtocolName", "measurementInformation/protocolName"),
                      ("PatientPosition", "measurementInformation/patientPosition"),
                      ("PulseSequenceType", "sequenceParameters/sequence_type")):
        text = (root.findtext(path) or "").strip()
        if text:
            out[key] = text
    numbers = (("MagneticFieldStrength", "acquisitionSystemInformation/systemFieldStrength_T", 1.0),
               ("ImagingFrequency", "experimentalConditions/H1resonanceFrequency_Hz", 1e-6),
               ("RepetitionTime", "sequenceParameters/TR", 1e-3),
               ("EchoTime", "sequenceParameters/TE", 1e-3),
               ("InversionTime", "sequenceParameters/TI", 1e-3),
               ("FlipAngle", "sequenceParameters/flipAngle_deg", 1.0))
    for key, path, scale in numbers:
        v = _single(root, path, scale)
        if v is not None and np.isfinite(v):
            out[key] = round(v, 9)
    enc = root.find("encoding")
    z = _num(enc.find("encodedSpace/matrixSize") if enc is not None else None, "z", int)
    if z is not None and z >= 1:
        out["MRAcquisitionType"] = "2D" if z == 1 else "3D"
        fov_z = _num(enc.find("encodedSpace/fieldOfView_mm"), "z") if enc is not None else None
        if z == 1 and fov_z is not None and fov_z > 0:
            out["SliceThickness"] = round(float(fov_z), 6)
    return out
