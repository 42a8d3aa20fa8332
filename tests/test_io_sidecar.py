"""The BIDS-style JSON sidecar next to NIfTI outputs (recon.nii.gz → recon.json): BIDS keys and units (seconds)
from the input's ISMRMRD header, nothing invented when the input says nothing, mrdiff's own keys, --overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.header import acquisition_parameters

runner = CliRunner()
SENSE = ["--method", "sense", "--mask", "equispaced", "--accel", "2", "-q"]

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <measurementInformation><patientPosition>HFS</patientPosition><protocolName>AX T2</protocolName>
  </measurementInformation>
  <acquisitionSystemInformation><systemVendor>SIEMENS</systemVendor><systemModel>Skyra</systemModel>
    <systemFieldStrength_T>2.89362</systemFieldStrength_T><receiverChannels>4</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace><matrixSize><x>32</x><y>32</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>224</x><y>224</y><z>5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>32</x><y>32</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>224</x><y>224</y><z>5</z></fieldOfView_mm></reconSpace>
    <trajectory>cartesian</trajectory>
  </encoding>
  <sequenceParameters><TR>6000</TR><TE>113</TE><TI>100</TI><flipAngle_deg>150</flipAngle_deg>
    <sequence_type>TurboSpinEcho</sequence_type></sequenceParameters>
</ismrmrdHeader>"""


@pytest.fixture(autouse=True)
def _offline(cli_env):
    """Offline, no SLURM / progress / thread settings from the caller (conftest.cli_env)."""


@pytest.fixture(scope="module")
def scanner_file(tmp_path_factory, tiny_sim):
    """The tiny simulated k-space as a fastMRI file with a scanner-like header (no experimentalConditions would
    also be fine: the header is read leniently)."""
    from mrdiff_cli.io.fastmri import write_fastmri

    path = tmp_path_factory.mktemp("sidecar") / "scanner.h5"
    return write_fastmri(path, tiny_sim.kspace, header_xml=HEADER, attrs={"acquisition": "AXT2",
                                                                          "patient_id": "abc123"})


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


def recon(*args):
    return runner.invoke(app, ["reconstruct", *[str(a) for a in args]])


def test_acquisition_parameters_units():
    p = acquisition_parameters(HEADER)
    assert p["RepetitionTime"] == pytest.approx(6.0) and p["EchoTime"] == pytest.approx(0.113)  # ms → s
    assert p["InversionTime"] == pytest.approx(0.1) and p["FlipAngle"] == 150.0
    assert p["MagneticFieldStrength"] == pytest.approx(2.89362) and p["ImagingFrequency"] == pytest.approx(123.251815)
    assert p["Manufacturer"] == "SIEMENS" and p["ManufacturersModelName"] == "Skyra"
    assert p["MRAcquisitionType"] == "2D" and p["SliceThickness"] == 5.0 and p["PulseSequenceType"] == "TurboSpinEcho"
    assert p["ProtocolName"] == "AX T2" and p["PatientPosition"] == "HFS"
    two_te = HEADER.replace("<TE>113</TE>", "<TE>10</TE><TE>20</TE>")
    assert "EchoTime" not in acquisition_parameters(two_te)  # several echoes: not guessed
    assert acquisition_parameters("not xml") == {} and acquisition_parameters(None) == {}


def test_sidecar_keys_and_units(scanner_file, tmp_path):
    out = tmp_path / "recon.nii.gz"
    res = ok(recon(scanner_file, "-o", out, *SENSE, "--json"))
    side = json.loads((tmp_path / "recon.json").read_text())
    assert side["RepetitionTime"] == pytest.approx(6.0) and side["EchoTime"] == pytest.approx(0.113)
    assert side["InversionTime"] == pytest.approx(0.1) and side["FlipAngle"] == 150.0
    assert side["MagneticFieldStrength"] == pytest.approx(2.89362) and side["Manufacturer"] == "SIEMENS"
    assert side["AcquisitionMatrixPE"] == 32 and side["ReconMatrixPE"] == 32 and side["PhaseEncodingAxis"] == "j"
    assert side["ParallelReductionFactorInPlane"] == pytest.approx(side["MrdiffAcceleration"]) and \
        1.5 < side["MrdiffAcceleration"] < 2.5
    assert side["ConversionSoftware"] == "mrdiff" and side["ConversionSoftwareVersion"]
    assert side["MrdiffMethod"] == "sense" and side["MrdiffMask"]["kind"] == "equispaced" and side["MrdiffSeed"] == 0
    assert side["MrdiffCoils"] == 4 and side["MrdiffSlices"] == [0, 1] and side["MrdiffInputFormat"] == "fastmri"
    assert side["MrdiffAcquisitionLabel"] == "AXT2"
    assert "patient_id" not in json.dumps(side) and "abc123" not in json.dumps(side)  # no identifiers
    # the metrics JSON is a different file and lists the sidecar
    summary = json.loads(res.stdout)["results"][0]
    assert summary["output"]["json_sidecar"] == str(tmp_path / "recon.json")
    assert json.loads((tmp_path / "recon_metrics.json").read_text())["output"]["json_sidecar"].endswith("recon.json")


def test_nothing_invented_without_a_header(tmp_path, tiny_fastmri_file):
    from mrdiff_cli.io.bart import write_bart
    from mrdiff_cli.io.fastmri import open_scan

    with open_scan(tiny_fastmri_file) as r:
        k = r.read_slices()
    write_bart(tmp_path / "scan", np.transpose(k, (2, 3, 1, 0))[:, :, None, :, None, None, None, None, None, None,
                                                                  None, None, None, :])
    ok(recon(tmp_path / "scan.cfl", "-o", tmp_path / "b.nii.gz", *SENSE))
    side = json.loads((tmp_path / "b.json").read_text())
    for key in ("EchoTime", "RepetitionTime", "FlipAngle", "MagneticFieldStrength", "Manufacturer",
                "MRAcquisitionType", "SliceThickness", "ImagingFrequency"):
        assert key not in side
    assert side["MrdiffInputFormat"] == "bart" and side["MrdiffGeometry"].startswith("default")
    assert side["ReconMatrixPE"] == 32 and all(v is not None for v in side.values())


def test_ismrmrd_input_and_uncertainty_model_keys(tiny_ismrmrd_file, model_dir, tmp_path):
    out = tmp_path / "u.nii.gz"
    ok(runner.invoke(app, ["uncertainty", str(tiny_ismrmrd_file), "-o", str(out), "--model", str(model_dir),
                           "--mask", "equispaced", "--accel", "4", "--steps", "2", "-K", "2", "-q"]))
    side = json.loads((tmp_path / "u.json").read_text())
    assert side["MrdiffInputFormat"] == "ismrmrd" and side["MrdiffSamples"] == 2
    assert side["MrdiffMethod"] == "diffusion" and side["MrdiffSampler"] == "fast"
    assert side["MrdiffModel"]["name"] == model_dir.name and side["MrdiffNFE"] > 0
    assert not (tmp_path / "u_variance.json").exists()  # one sidecar, for the image (the mean)


def test_dicom_output_has_no_bids_sidecar(tiny_fastmri_file, tmp_path):
    ok(recon(tiny_fastmri_file, "-o", str(tmp_path / "series") + "/", *SENSE))
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "series" / "series.json").exists()


def test_existing_sidecar_needs_overwrite(tiny_fastmri_file, tmp_path):
    (tmp_path / "r.json").write_text("{}")
    res = recon(tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", *SENSE)
    assert res.exit_code == 2 and "r.json" in res.stderr and "--overwrite" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # checked before any output was written
    ok(recon(tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", *SENSE, "--overwrite"))
    assert json.loads((tmp_path / "r.json").read_text())["MrdiffMethod"] == "sense"
